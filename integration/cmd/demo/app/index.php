<?php
// The demo's page: every visit is written (mysqli, a prepared INSERT that
// goes to the primary) and the recent visits are read (PDO, a SELECT that
// goes to a replica). Both connect to the switchyard beside this web server,
// never to a database server directly: PHP-FPM's pool passes its address in
// the environment (see the demo's php-fpm config and deploy/).
//
// Which server answered is asked of the servers themselves: the INSERT
// stores @@server_id as the primary evaluates it (row-based replication
// copies the value, not the expression) and returns it with RETURNING; the
// read selects @@server_id in the same statement as the rows. switchyard
// sends statements that read per-server variables to the primary on their
// own, so the read carries a route hint to show the replica that serves
// the app's reads.

$web     = getenv('WEB_NAME') ?: 'web?';
$proxy   = getenv('SWITCHYARD_NAME') ?: 'switchyard?';
$host    = getenv('DB_HOST') ?: '127.0.0.1';
$port    = (int) (getenv('DB_PORT') ?: 6033);
$user    = getenv('DB_USER') ?: 'app';
$pass    = getenv('DB_PASSWORD') ?: '';
$schema  = getenv('DB_NAME') ?: 'shop';
$names   = [];
foreach (explode(',', getenv('DB_SERVER_NAMES') ?: '') as $pair) {
    if (strpos($pair, '=') !== false) {
        [$id, $name] = explode('=', $pair, 2);
        $names[(int) $id] = $name;
    }
}
$serverName = function ($id) use ($names) {
    if ($id === null) {
        return 'none';
    }
    return ($names[(int) $id] ?? 'server') . ' (server_id ' . (int) $id . ')';
};

$write = ['ok' => false, 'server' => null, 'id' => null, 'error' => null];
$read  = ['ok' => false, 'server' => null, 'rows' => [], 'error' => null];

mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
try {
    $db = new mysqli($host, $user, $pass, $schema, $port);
    $db->set_charset('utf8mb4');
    $client = $_SERVER['HTTP_X_FORWARDED_FOR'] ?? ($_SERVER['REMOTE_ADDR'] ?? '');
    $st = $db->prepare('INSERT INTO visits (web_server, switchyard, client, written_on) '
        . 'VALUES (?, ?, ?, @@server_id) RETURNING id, written_on');
    $st->bind_param('sss', $web, $proxy, $client);
    $st->execute();
    $row = $st->get_result()->fetch_assoc();
    $write = ['ok' => true, 'server' => $row['written_on'], 'id' => $row['id'], 'error' => null];
    $db->close();
} catch (mysqli_sql_exception $e) {
    $write['error'] = sprintf('error %d (%s): %s', $e->getCode(), $e->getSqlState(), $e->getMessage());
}

try {
    $pdo = new PDO("mysql:host=$host;port=$port;dbname=$schema;charset=utf8mb4", $user, $pass,
        [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
    $rows = $pdo->query('SELECT /* switchyard:route=replica */ @@server_id AS read_on, id, created_at, '
        . 'web_server, switchyard, written_on FROM visits ORDER BY id DESC LIMIT 10')->fetchAll(PDO::FETCH_ASSOC);
    $read = ['ok' => true, 'server' => $rows ? $rows[0]['read_on'] : null, 'rows' => $rows, 'error' => null];
} catch (PDOException $e) {
    $info = $e->errorInfo ?? [];
    $read['error'] = sprintf('error %s (%s): %s', $info[1] ?? '?', $info[0] ?? $e->getCode(), $e->getMessage());
}

// The same facts as headers, for curl -i and for the demo's own check.
header('X-Web-Server: ' . $web);
header('X-Switchyard: ' . $proxy);
header('X-Write-Server: ' . ($write['ok'] ? $serverName($write['server']) : 'failed'));
header('X-Read-Server: ' . ($read['ok'] ? $serverName($read['server']) : 'failed'));

$h = fn($s) => htmlspecialchars((string) $s, ENT_QUOTES, 'UTF-8');
?><!doctype html>
<html><head><meta charset="utf-8"><title>switchyard demo</title>
<style>
body { font-family: sans-serif; margin: 2em; max-width: 60em; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: .2em .6em; }
.ok { color: #070; } .err { color: #b00; }
</style></head>
<body>
<h1>switchyard demo</h1>
<p>This page was served by <b><?= $h($web) ?></b>, whose PHP talks to <b><?= $h($proxy) ?></b>
(<?= $h("$host:$port") ?>). Reload: HAProxy alternates between the web servers.</p>
<ul>
<li>Write (mysqli, prepared INSERT):
<?php if ($write['ok']): ?><span class="ok">visit #<?= $h($write['id']) ?> written on <b><?= $h($serverName($write['server'])) ?></b></span>
<?php else: ?><span class="err"><?= $h($write['error']) ?></span><?php endif ?></li>
<li>Read (PDO, SELECT):
<?php if ($read['ok']): ?><span class="ok">answered by <b><?= $h($serverName($read['server'])) ?></b></span>
<?php else: ?><span class="err"><?= $h($read['error']) ?></span><?php endif ?></li>
</ul>
<h2>Recent visits</h2>
<table><tr><th>#</th><th>at</th><th>web server</th><th>switchyard</th><th>written on</th></tr>
<?php foreach ($read['rows'] as $r): ?>
<tr><td><?= $h($r['id']) ?></td><td><?= $h($r['created_at']) ?></td><td><?= $h($r['web_server']) ?></td>
<td><?= $h($r['switchyard']) ?></td><td><?= $h($serverName($r['written_on'])) ?></td></tr>
<?php endforeach ?>
</table>
</body></html>
