<?php
// PDO_mysql conformance, with emulated (SY_EMULATE=1) or native prepares:
// run once through switchyard and once directly against the primary; the Go
// test requires equal JSON outputs, so nothing printed may depend on the
// path (see conformance_mysqli.php).
//
// Environment: SY_HOST, SY_PORT, SY_USER, SY_PASS, SY_DB, SY_TABLE,
// SY_EMULATE.
declare(strict_types=1);

function env(string $k): string
{
    $v = getenv($k);
    if ($v === false || $v === '') {
        throw new RuntimeException("missing environment variable $k");
    }
    return $v;
}

// attempt runs $f and reports its result, or the PDOException it threw with
// its SQLSTATE and driver error code.
function attempt(callable $f): array
{
    try {
        return ['ok' => true, 'result' => $f()];
    } catch (PDOException $e) {
        return ['ok' => false, 'sqlstate' => $e->errorInfo[0] ?? null, 'driver_code' => $e->errorInfo[1] ?? null,
            'code' => $e->getCode(), 'message' => $e->getMessage()];
    }
}

function typed($v)
{
    if (is_array($v)) {
        return array_map('typed', $v);
    }
    if (is_string($v) && preg_match('//u', $v) !== 1) {
        return ['binary' => bin2hex($v)];
    }
    return [gettype($v) => $v];
}

try {
    $host = env('SY_HOST');
    $port = env('SY_PORT');
    $user = env('SY_USER');
    $pass = env('SY_PASS');
    $db = env('SY_DB');
    $t = env('SY_TABLE');
    $emulate = env('SY_EMULATE') === '1';
    $dsn = "mysql:host=$host;port=$port;dbname=$db;charset=utf8mb4";
    $opts = [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION, PDO::ATTR_EMULATE_PREPARES => $emulate];
    $out = [];

    $pdo = new PDO($dsn, $user, $pass, $opts);
    $out['emulate'] = $pdo->getAttribute(PDO::ATTR_EMULATE_PREPARES);
    $out['server_version'] = $pdo->getAttribute(PDO::ATTR_SERVER_VERSION);
    $out['connection_status'] = $pdo->getAttribute(PDO::ATTR_CONNECTION_STATUS);
    $pdo->exec("DROP TABLE IF EXISTS `$t`");
    $pdo->exec("CREATE TABLE `$t` (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) NOT NULL UNIQUE,
        qty INT, price DECIMAL(10,2), ratio DOUBLE, flag BOOLEAN, data MEDIUMBLOB, at DATETIME) DEFAULT CHARSET=utf8mb4");

    // exec, lastInsertId, rowCount.
    $out['exec_insert'] = $pdo->exec("INSERT INTO `$t` (name, qty) VALUES ('a', 1), ('b', 2), ('c', 3)");
    $out['last_insert_id'] = $pdo->lastInsertId();
    $st = $pdo->prepare("INSERT INTO `$t` (name, qty, price, ratio, flag, data, at) VALUES (:name, :qty, :price, :ratio, :flag, :data, :at)");
    $bytes = '';
    for ($k = 0; $k < 256; $k++) {
        $bytes .= chr($k);
    }
    $blob = fopen('php://memory', 'r+');
    fwrite($blob, str_repeat($bytes, 300));
    rewind($blob);
    $st->bindValue(':name', 'ünï 😀');
    $st->bindValue(':qty', -42, PDO::PARAM_INT);
    $st->bindValue(':price', '19.99');
    $st->bindValue(':ratio', 0.125);
    $st->bindValue(':flag', true, PDO::PARAM_BOOL);
    $st->bindParam(':data', $blob, PDO::PARAM_LOB);
    $st->bindValue(':at', '2024-02-29 23:59:59');
    $st->execute();
    $out['prepared_insert'] = ['row_count' => $st->rowCount(), 'last_insert_id' => $pdo->lastInsertId()];
    $st = $pdo->prepare("INSERT INTO `$t` (name, qty, data) VALUES (?, ?, ?)");
    $st->execute(['nulls', null, null]);
    $out['positional_insert'] = ['row_count' => $st->rowCount(), 'last_insert_id' => $pdo->lastInsertId()];
    $out['update_count'] = $pdo->exec("UPDATE `$t` SET qty = qty + 1 WHERE qty IS NOT NULL");
    $out['update_unchanged'] = $pdo->exec("UPDATE `$t` SET qty = qty WHERE name = 'a'");

    // Reads: query and prepared, every fetch mode that shows types.
    $q = $pdo->query("SELECT id, name, qty, price, ratio, flag, LENGTH(data) AS dlen, MD5(data) AS dmd5, at FROM `$t` ORDER BY id");
    $meta = [];
    for ($c = 0; $c < $q->columnCount(); $c++) {
        $m = $q->getColumnMeta($c);
        $meta[] = ['name' => $m['name'], 'native_type' => $m['native_type'] ?? null, 'len' => $m['len'],
            'precision' => $m['precision'], 'pdo_type' => $m['pdo_type'], 'flags' => $m['flags']];
    }
    $out['query'] = ['rows' => typed($q->fetchAll(PDO::FETCH_ASSOC)), 'meta' => $meta];
    $st = $pdo->prepare("SELECT id, name, qty, price, ratio, flag, at FROM `$t` WHERE qty > :min ORDER BY id");
    $st->execute([':min' => 1]);
    $out['prepared_select'] = ['rows' => typed($st->fetchAll(PDO::FETCH_NUM)), 'row_count' => $st->rowCount()];
    $st = $pdo->prepare("SELECT data FROM `$t` WHERE name = ?");
    $st->execute(['ünï 😀']);
    $out['blob_roundtrip'] = $st->fetchColumn() === str_repeat($bytes, 300);
    $st = $pdo->prepare('SELECT ? AS i, ? AS s, ? AS n, ? AS b');
    $st->bindValue(1, 5, PDO::PARAM_INT);
    $st->bindValue(2, "it's", PDO::PARAM_STR);
    $st->bindValue(3, null, PDO::PARAM_NULL);
    $st->bindValue(4, false, PDO::PARAM_BOOL);
    $st->execute();
    $out['params_echo'] = typed($st->fetch(PDO::FETCH_ASSOC));
    $out['quote'] = $pdo->quote("O'Reilly \\ \x00 😀");
    $out['quoted_roundtrip'] = $pdo->query('SELECT ' . $pdo->quote("O'Reilly \\ \x00 😀"))->fetchColumn() === "O'Reilly \\ \x00 😀";

    // Several result sets in one statement (a procedure).
    $pdo->exec("DROP PROCEDURE IF EXISTS `{$t}_p`");
    $pdo->exec("CREATE PROCEDURE `{$t}_p`(IN n INT) BEGIN SELECT n AS first; SELECT n + 1 AS second, 'x' AS third; END");
    $st = $pdo->prepare("CALL `{$t}_p`(?)");
    $st->execute([10]);
    $sets = [];
    do {
        if ($st->columnCount() > 0) {
            $sets[] = typed($st->fetchAll(PDO::FETCH_ASSOC));
        }
    } while ($st->nextRowset());
    $out['call_rowsets'] = $sets;
    $pdo->exec("DROP PROCEDURE `{$t}_p`");

    // Transactions.
    $out['tx']['begin'] = $pdo->beginTransaction();
    $out['tx']['in_transaction'] = $pdo->inTransaction();
    $pdo->exec("INSERT INTO `$t` (name) VALUES ('rolled')");
    $out['tx']['rollback'] = $pdo->rollBack();
    $out['tx']['after_rollback'] = $pdo->query("SELECT COUNT(*) FROM `$t` WHERE name = 'rolled'")->fetchColumn();
    $pdo->beginTransaction();
    $pdo->exec("INSERT INTO `$t` (name) VALUES ('kept')");
    $out['tx']['last_insert_id_in_tx'] = $pdo->lastInsertId();
    $out['tx']['commit'] = $pdo->commit();
    $out['tx']['in_transaction_after'] = $pdo->inTransaction();
    $out['tx']['after_commit'] = $pdo->query("SELECT COUNT(*) FROM `$t` WHERE name = 'kept'")->fetchColumn();
    $out['tx']['commit_without_begin'] = attempt(fn() => $pdo->commit());
    $pdo->beginTransaction();
    $out['tx']['error_in_tx'] = attempt(fn() => $pdo->exec("INSERT INTO `$t` (name) VALUES ('a')"));
    $out['tx']['still_in_tx'] = $pdo->inTransaction();
    $pdo->rollBack();

    // Exceptions: SQLSTATE and driver code, from exec, query, prepare and execute.
    $out['errors']['duplicate'] = attempt(fn() => $pdo->exec("INSERT INTO `$t` (name) VALUES ('a')"));
    $out['errors']['syntax'] = attempt(fn() => $pdo->query('SELEC 1'));
    $out['errors']['no_table'] = attempt(fn() => $pdo->query('SELECT * FROM no_such_table_conformance'));
    $out['errors']['no_table_prepare'] = attempt(function () use ($pdo) {
        $st = $pdo->prepare('SELECT * FROM no_such_table_conformance WHERE id = ?');
        $st->execute([1]);
        return $st->fetchAll();
    });
    $out['errors']['too_long'] = attempt(function () use ($pdo, $t) {
        $st = $pdo->prepare("INSERT INTO `$t` (name) VALUES (?)");
        return $st->execute([str_repeat('y', 21)]);
    });
    $out['errors']['not_null'] = attempt(function () use ($pdo, $t) {
        $st = $pdo->prepare("INSERT INTO `$t` (name) VALUES (?)");
        return $st->execute([null]);
    });
    $out['errors']['unknown_column'] = attempt(fn() => $pdo->query("SELECT nope FROM `$t`"));
    $out['errors']['division'] = attempt(fn() => $pdo->query('SELECT 1/0')->fetchAll(PDO::FETCH_NUM));
    $out['errors']['signal'] = attempt(fn() => $pdo->exec("SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'custom', MYSQL_ERRNO = 1644"));
    $out['errors']['after'] = $pdo->query('SELECT 42')->fetchColumn();
    $pdo->setAttribute(PDO::ATTR_ERRMODE, PDO::ERRMODE_SILENT);
    $out['errors']['silent'] = ['result' => $pdo->query('SELECT * FROM no_such_table_conformance'), 'error_info' => $pdo->errorInfo()];
    $pdo->setAttribute(PDO::ATTR_ERRMODE, PDO::ERRMODE_EXCEPTION);

    $out['wrong_password'] = attempt(fn() => new PDO($dsn, $user, 'wrong-password', $opts));
    $out['unknown_database'] = attempt(fn() => new PDO("mysql:host=$host;port=$port;dbname=no_such_db_conformance", $user, $pass, $opts));

    $pdo->exec("DROP TABLE `$t`");
    echo json_encode($out, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_PRETTY_PRINT), "\n";
} catch (Throwable $e) {
    echo json_encode(['fatal' => get_class($e) . ': ' . $e->getMessage() . ' at line ' . $e->getLine()]), "\n";
    exit(1);
}
