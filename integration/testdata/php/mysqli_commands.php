<?php
// mysqli (mysqlnd) through switchyard: CRUD, server-side prepared statements,
// errors, multi_query, change_user, stat, ping and select_db.
//
// Connection parameters come from the environment (SY_HOST, SY_PORT, SY_USER,
// SY_PASS, SY_DB, SY_USER2, SY_PASS2, SY_TABLE, SY_OTHER_DB). The script
// prints one JSON object describing what it observed and exits 0; any
// unexpected failure prints {"fatal": ...} and exits 1. The Go test decides
// what is right.
declare(strict_types=1);

mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);

function env(string $k): string
{
    $v = getenv($k);
    if ($v === false || $v === '') {
        throw new RuntimeException("missing environment variable $k");
    }
    return $v;
}

// attempt runs $f and reports either its result or the mysqli error it threw.
function attempt(callable $f): array
{
    try {
        return ['ok' => true, 'result' => $f()];
    } catch (mysqli_sql_exception $e) {
        return ['ok' => false, 'errno' => $e->getCode(), 'sqlstate' => $e->getSqlState(), 'error' => $e->getMessage()];
    }
}

function scalar(mysqli $m, string $sql)
{
    $r = $m->query($sql);
    $row = $r->fetch_row();
    $r->free();
    return $row[0];
}

try {
    $host = env('SY_HOST');
    $port = (int)env('SY_PORT');
    $user = env('SY_USER');
    $pass = env('SY_PASS');
    $db = env('SY_DB');
    $user2 = env('SY_USER2');
    $pass2 = env('SY_PASS2');
    $table = env('SY_TABLE');
    $otherDb = env('SY_OTHER_DB');

    $out = [];
    $m = new mysqli($host, $user, $pass, $db, $port);
    $out['server_id'] = (int)scalar($m, 'SELECT @@server_id');
    $out['connect_database'] = scalar($m, 'SELECT DATABASE()');
    $out['connect_user'] = scalar($m, 'SELECT CURRENT_USER()');
    $m->query("CREATE DATABASE IF NOT EXISTS `$otherDb`");

    // CRUD on a table of our own.
    $m->query("DROP TABLE IF EXISTS `$table`");
    $m->query("CREATE TABLE `$table` (
        id INT AUTO_INCREMENT PRIMARY KEY,
        qty INT NULL,
        name VARCHAR(64) NULL,
        note VARCHAR(64) NULL,
        price DOUBLE NULL,
        created DATETIME NULL,
        payload MEDIUMBLOB NULL
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4");
    $crud = [];
    $m->query("INSERT INTO `$table` (qty, name) VALUES (1, 'alpha'), (2, 'beta'), (3, 'gamma')");
    $crud['insert_affected'] = $m->affected_rows;
    $crud['insert_id'] = $m->insert_id;
    $m->query("UPDATE `$table` SET qty = qty * 10 WHERE name IN ('beta', 'gamma')");
    $crud['update_affected'] = $m->affected_rows;
    $m->query("DELETE FROM `$table` WHERE name = 'alpha'");
    $crud['delete_affected'] = $m->affected_rows;
    $r = $m->query("SELECT id, qty, name FROM `$table` ORDER BY id");
    $crud['rows'] = $r->fetch_all(MYSQLI_NUM);
    $r->free();
    $out['crud'] = $crud;

    // Server-side prepared statements (COM_STMT_PREPARE/EXECUTE/CLOSE) with
    // int, string, NULL, float and DATETIME, executed twice.
    $ps = [];
    $st = $m->prepare("INSERT INTO `$table` (qty, name, note, price, created) VALUES (?, ?, ?, ?, ?)");
    $ps['param_count'] = $st->param_count;
    $qty = 42;
    $name = "café ☕";
    $note = null;
    $price = 12.5;
    $created = '2024-02-29 13:45:07';
    $st->bind_param('issds', $qty, $name, $note, $price, $created);
    $st->execute();
    $id1 = $st->insert_id;
    $qty = -7;
    $name = 'second';
    $note = 'has a note';
    $price = -0.25;
    $created = '1999-12-31 23:59:59';
    $st->execute();
    $id2 = $st->insert_id;
    $st->close();

    $sel = $m->prepare("SELECT id, qty, name, note, price, created FROM `$table` WHERE id = ?");
    $ps['field_count'] = $sel->field_count;
    $id = $id1;
    $sel->bind_param('i', $id);
    $sel->execute();
    $res = $sel->get_result();
    $row1 = $res->fetch_assoc();
    $ps['row1_more'] = $res->fetch_assoc() !== null;
    $id = $id2;
    $sel->execute();
    $row2 = $sel->get_result()->fetch_assoc();
    $sel->close();
    $types = [];
    foreach ($row1 as $k => $v) {
        $types[$k] = gettype($v);
    }
    $ps['ids'] = [$id1, $id2];
    $ps['row1'] = $row1;
    $ps['row1_types'] = $types;
    $ps['row2'] = $row2;

    // COM_STMT_SEND_LONG_DATA (no response) and COM_STMT_RESET.
    $lb = $m->prepare("UPDATE `$table` SET payload = ? WHERE id = ?");
    $nothing = null;
    $lid = $id1;
    $lb->bind_param('bi', $nothing, $lid);
    $lb->send_long_data(0, str_repeat('A', 100000));
    $lb->send_long_data(0, 'tail');
    $lb->execute();
    $ps['long_data_affected'] = $lb->affected_rows;
    $ps['reset'] = $lb->reset();
    $lb->close();
    $r = $m->query("SELECT LENGTH(payload), RIGHT(payload, 4) FROM `$table` WHERE id = $id1");
    $ps['payload'] = $r->fetch_row();
    $r->free();
    $out['prepared'] = $ps;

    // Errors reach PHP with errno and SQLSTATE, and the session goes on.
    $out['missing_table'] = attempt(fn() => $m->query('SELECT * FROM cmds_no_such_table'));
    $out['missing_table_prepare'] = attempt(fn() => $m->prepare('SELECT * FROM cmds_no_such_table WHERE id = ?'));
    $out['after_error'] = (int)scalar($m, 'SELECT 40 + 2');

    // multi_query: mysqlnd enables multi-statements with COM_SET_OPTION.
    $results = [];
    $m->multi_query("INSERT INTO `$table` (qty, name) VALUES (5, 'multi'); "
        . "SELECT name, qty FROM `$table` WHERE name IN ('beta', 'multi') ORDER BY name; "
        . "SELECT 'tail' AS tag, 3 AS n");
    do {
        $r = $m->store_result();
        if ($r) {
            $results[] = ['rows' => $r->fetch_all(MYSQLI_NUM)];
            $r->free();
        } else {
            $results[] = ['affected' => $m->affected_rows];
        }
    } while ($m->more_results() && $m->next_result());
    $out['multi'] = $results;
    $out['after_multi'] = (int)scalar($m, 'SELECT 2 + 2');
    // A failing statement in the middle ends the batch with its error.
    $mq = [];
    try {
        $m->multi_query("SELECT 'first' AS a; SELECT * FROM cmds_no_such_table; SELECT 'never'");
        do {
            $r = $m->store_result();
            if ($r) {
                $mq[] = $r->fetch_all(MYSQLI_NUM);
                $r->free();
            }
        } while ($m->more_results() && $m->next_result());
        $mq[] = 'no error';
    } catch (mysqli_sql_exception $e) {
        $mq[] = ['errno' => $e->getCode(), 'sqlstate' => $e->getSqlState()];
    }
    $out['multi_error'] = $mq;
    $out['multi_error_more'] = $m->more_results();
    $out['after_multi_error'] = (int)scalar($m, 'SELECT 6 * 7');
    // mysqli switches multi-statements off again before the next query().
    $out['multi_off'] = attempt(fn() => $m->query('SELECT 1; SELECT 2'));

    // Warnings: the count arrives with the result, SHOW WARNINGS lists them.
    $r = $m->query('SELECT 1 / 0 AS q');
    $out['warning_value'] = $r->fetch_row()[0];
    $r->free();
    $out['warning_count'] = $m->warning_count;
    $r = $m->query('SHOW WARNINGS');
    $out['warnings'] = $r->fetch_all(MYSQLI_NUM);
    $r->free();

    // change_user: a fresh session as another configured user.
    $cu = [];
    $m->query("SET @cmds_marker = 'before'");
    $m->query('SET SESSION auto_increment_increment = 7');
    $m->query('CREATE TEMPORARY TABLE cmds_tmp (x INT)');
    $cu['marker_before'] = scalar($m, 'SELECT @cmds_marker');
    $cu['aii_before'] = (int)scalar($m, 'SELECT @@session.auto_increment_increment');
    $cu['result'] = $m->change_user($user2, $pass2, $db);
    $cu['current_user'] = scalar($m, 'SELECT CURRENT_USER()');
    $cu['marker_after'] = scalar($m, 'SELECT @cmds_marker');
    $cu['aii_after'] = (int)scalar($m, 'SELECT @@session.auto_increment_increment');
    $cu['tmp_after'] = attempt(fn() => $m->query('SELECT * FROM cmds_tmp'));
    $cu['database'] = scalar($m, 'SELECT DATABASE()');
    $cu['server_id'] = (int)scalar($m, 'SELECT @@server_id');
    $cu['count_as_user2'] = (int)scalar($m, "SELECT COUNT(*) FROM `$table`");
    // And back to the first user, this time naming another schema.
    $cu['back_result'] = $m->change_user($user, $pass, $otherDb);
    $cu['back_user'] = scalar($m, 'SELECT CURRENT_USER()');
    $cu['back_database'] = scalar($m, 'SELECT DATABASE()');
    $out['change_user'] = $cu;

    // A wrong password is refused with 1045, on a connection of its own.
    $m2 = new mysqli($host, $user, $pass, $db, $port);
    $bad = attempt(fn() => $m2->change_user($user2, 'wrong-password', $db));
    $bad['after'] = attempt(fn() => scalar($m2, 'SELECT CURRENT_USER()'));
    $out['bad_change_user'] = $bad;

    // change_user naming a schema that does not exist is refused with 1049.
    $m3 = new mysqli($host, $user, $pass, $db, $port);
    $m3->query("SET @cmds_marker = 'kept'");
    $bad = attempt(fn() => $m3->change_user($user2, $pass2, 'cmds_no_such_db'));
    $bad['after'] = attempt(fn() => scalar($m3, 'SELECT CURRENT_USER()'));
    $out['bad_change_user_db'] = $bad;

    // A read-only cursor: rows come through COM_STMT_FETCH.
    $cur = $m->prepare("SELECT id, name FROM `$db`.`$table` WHERE id >= ? ORDER BY id");
    $cur->attr_set(MYSQLI_STMT_ATTR_CURSOR_TYPE, MYSQLI_CURSOR_TYPE_READ_ONLY);
    $from = 3;
    $cur->bind_param('i', $from);
    $cur->execute();
    $cur->bind_result($cid, $cname);
    $fetched = [];
    while ($cur->fetch()) {
        $fetched[] = [$cid, $cname];
    }
    $cur->close();
    $out['cursor'] = $fetched;
    $out['after_cursor'] = (int)scalar($m, 'SELECT 5 + 5');

    // COM_STATISTICS and COM_PING.
    $out['stat'] = $m->stat();
    $out['ping'] = $m->ping();
    $out['after_ping'] = (int)scalar($m, 'SELECT 3 * 3');

    // COM_INIT_DB.
    $sd = [];
    $sd['before'] = scalar($m, 'SELECT DATABASE()');
    $sd['result'] = $m->select_db($db);
    $sd['database'] = scalar($m, 'SELECT DATABASE()');
    $sd['unqualified_count'] = (int)scalar($m, "SELECT COUNT(*) FROM `$table`");
    $sd['result_other'] = $m->select_db($otherDb);
    $sd['database_other'] = scalar($m, 'SELECT DATABASE()');
    $sd['missing'] = attempt(fn() => $m->select_db('cmds_no_such_db'));
    $sd['database_after_missing'] = scalar($m, 'SELECT DATABASE()');
    $out['select_db'] = $sd;

    $m->close();
    echo json_encode($out, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES), "\n";
} catch (Throwable $e) {
    echo json_encode(['fatal' => get_class($e) . ': ' . $e->getMessage() . ' (code ' . $e->getCode() . ') at line ' . $e->getLine()]), "\n";
    exit(1);
}
