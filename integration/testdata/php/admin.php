<?php
// PHP on switchyard's admin interface: mysqli with a server-side prepared
// statement, and PDO. Connection parameters come from the environment
// (SY_HOST, SY_PORT, SY_USER, SY_PASS). It prints one JSON object of what
// it read and exits 0; any failure prints {"fatal": ...} and exits 1.
declare(strict_types=1);

mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);

try {
    $host = getenv('SY_HOST');
    $port = (int)getenv('SY_PORT');
    $m = new mysqli($host, getenv('SY_USER'), getenv('SY_PASS'), '', $port);
    $m->set_charset('utf8mb4');
    $st = $m->prepare('SELECT name FROM runtime_servers WHERE role = ? ORDER BY name');
    $role = 'replica';
    $st->bind_param('s', $role);
    $st->execute();
    $replicas = array_map(fn($r) => $r[0], $st->get_result()->fetch_all());
    $primaries = (int)$m->query("SELECT COUNT(*) FROM runtime_servers WHERE role = 'primary'")->fetch_row()[0];

    $pdo = new PDO("mysql:host=$host;port=$port;charset=utf8mb4", getenv('SY_USER'), getenv('SY_PASS'),
        [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
    $q = $pdo->prepare('SELECT COUNT(*) AS n FROM servers WHERE name LIKE ?');
    $q->execute(['db%']);
    $staged = (int)$q->fetch(PDO::FETCH_ASSOC)['n'];
    echo json_encode(['replicas' => $replicas, 'primaries' => $primaries, 'staged' => $staged]), "\n";
} catch (Throwable $e) {
    echo json_encode(['fatal' => get_class($e) . ': ' . $e->getMessage()]), "\n";
    exit(1);
}
