<?php
// PDO_mysql (mysqlnd) through switchyard, with native (EMULATE_PREPARES=false)
// or emulated (true) prepares: prepared insert/select round trip, errors as
// PDOException with SQLSTATE and driver code, and transactions.
//
// Environment: SY_HOST, SY_PORT, SY_USER, SY_PASS, SY_DB, SY_TABLE and
// SY_EMULATE ("0" or "1"). Prints one JSON object and exits 0; an unexpected
// failure prints {"fatal": ...} and exits 1.
declare(strict_types=1);

function env(string $k): string
{
    $v = getenv($k);
    if ($v === false || $v === '') {
        throw new RuntimeException("missing environment variable $k");
    }
    return $v;
}

function attempt(callable $f): array
{
    try {
        return ['ok' => true, 'result' => $f()];
    } catch (PDOException $e) {
        return ['ok' => false, 'code' => (string)$e->getCode(), 'sqlstate' => $e->errorInfo[0] ?? null,
            'driver_code' => $e->errorInfo[1] ?? null, 'error' => $e->getMessage()];
    }
}

try {
    $host = env('SY_HOST');
    $port = env('SY_PORT');
    $db = env('SY_DB');
    $table = env('SY_TABLE');
    $emulate = env('SY_EMULATE') === '1';
    $dsn = "mysql:host=$host;port=$port;dbname=$db;charset=utf8mb4";
    $opts = [
        PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
        PDO::ATTR_EMULATE_PREPARES => $emulate,
        PDO::ATTR_DEFAULT_FETCH_MODE => PDO::FETCH_ASSOC,
    ];
    $pdo = new PDO($dsn, env('SY_USER'), env('SY_PASS'), $opts);
    // A second, independent client session to look from outside.
    $other = new PDO($dsn, env('SY_USER'), env('SY_PASS'), $opts);

    $out = ['emulate' => (bool)$pdo->getAttribute(PDO::ATTR_EMULATE_PREPARES)];
    $out['server_id'] = (int)$pdo->query('SELECT @@server_id')->fetchColumn();

    $pdo->exec("DROP TABLE IF EXISTS `$table`");
    $pdo->exec("CREATE TABLE `$table` (
        id INT PRIMARY KEY,
        qty INT NULL,
        name VARCHAR(64) NULL,
        note VARCHAR(64) NULL,
        price DECIMAL(10,2) NULL,
        created DATETIME NULL
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4");

    // Prepared insert and select round trip.
    $ins = $pdo->prepare("INSERT INTO `$table` (id, qty, name, note, price, created) VALUES (:id, :qty, :name, :note, :price, :created)");
    $ins->bindValue(':id', 1, PDO::PARAM_INT);
    $ins->bindValue(':qty', 42, PDO::PARAM_INT);
    $ins->bindValue(':name', "Zoë's \"quoted\" name", PDO::PARAM_STR);
    $ins->bindValue(':note', null, PDO::PARAM_NULL);
    $ins->bindValue(':price', '19.99', PDO::PARAM_STR);
    $ins->bindValue(':created', '2023-07-01 08:09:10', PDO::PARAM_STR);
    $ins->execute();
    $out['insert_count'] = $ins->rowCount();
    $ins->execute([':id' => 2, ':qty' => 7, ':name' => 'two', ':note' => 'n2', ':price' => '0.50', ':created' => '2000-01-01 00:00:00']);
    $out['insert2_count'] = $ins->rowCount();

    $sel = $pdo->prepare("SELECT id, qty, name, note, price, created FROM `$table` WHERE id = ?");
    $sel->execute([1]);
    $out['row1'] = $sel->fetch();
    $out['row1_more'] = $sel->fetch() !== false;
    $sel->execute([2]);
    $out['row2'] = $sel->fetch();
    $sel->closeCursor();

    // Errors.
    $out['missing_table'] = attempt(fn() => $pdo->query('SELECT * FROM cmds_pdo_no_such_table')->fetchAll());
    $out['missing_table_prepared'] = attempt(function () use ($pdo) {
        $s = $pdo->prepare('SELECT * FROM cmds_pdo_no_such_table WHERE id = ?');
        $s->execute([1]);
        return $s->fetchAll();
    });
    $out['duplicate_key'] = attempt(fn() => $ins->execute([':id' => 1, ':qty' => 0, ':name' => 'dup', ':note' => null, ':price' => '0', ':created' => null]));
    $out['after_error'] = (int)$pdo->query('SELECT 40 + 2')->fetchColumn();

    // A committed transaction is visible to another session.
    $tx = [];
    $tx['begin'] = $pdo->beginTransaction();
    $ins->execute([':id' => 10, ':qty' => 1, ':name' => 'committed', ':note' => null, ':price' => '1.00', ':created' => null]);
    $tx['in_tx'] = $pdo->inTransaction();
    $tx['commit'] = $pdo->commit();
    // Another session's plain reads may go to a replica that has not applied
    // the commit yet (read-your-writes is per session): ask the primary.
    $tx['committed_seen_by_other'] = (int)$other->query("/* switchyard:route=primary */ SELECT COUNT(*) FROM `$table` WHERE id = 10")->fetchColumn();

    // A rolled back one is gone, also for the session that wrote it.
    $tx['begin2'] = $pdo->beginTransaction();
    $ins->execute([':id' => 11, ':qty' => 1, ':name' => 'rolled back', ':note' => null, ':price' => '1.00', ':created' => null]);
    $tx['seen_inside'] = (int)$pdo->query("SELECT COUNT(*) FROM `$table` WHERE id = 11")->fetchColumn();
    $tx['seen_by_other_during'] = (int)$other->query("/* switchyard:route=primary */ SELECT COUNT(*) FROM `$table` WHERE id = 11")->fetchColumn();
    $tx['rollback'] = $pdo->rollBack();
    $tx['in_tx_after'] = $pdo->inTransaction();
    $tx['seen_after_rollback'] = (int)$pdo->query("SELECT COUNT(*) FROM `$table` WHERE id = 11")->fetchColumn();
    $tx['seen_by_other_after'] = (int)$other->query("/* switchyard:route=primary */ SELECT COUNT(*) FROM `$table` WHERE id = 11")->fetchColumn();
    $tx['ids'] = $other->query("/* switchyard:route=primary */ SELECT id FROM `$table` ORDER BY id")->fetchAll(PDO::FETCH_COLUMN);
    $out['tx'] = $tx;

    $pdo = null;
    $other = null;
    echo json_encode($out, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES), "\n";
} catch (Throwable $e) {
    echo json_encode(['fatal' => get_class($e) . ': ' . $e->getMessage() . ' (code ' . $e->getCode() . ') at line ' . $e->getLine()]), "\n";
    exit(1);
}
