<?php
// mysqli conformance: the same script runs once through switchyard and once
// directly against the primary, and the Go test requires the two JSON
// outputs to be equal. So everything printed must be what a PHP app can
// observe and must not depend on which path it took: no connection or
// thread ids (only whether two are equal), no table names in messages
// (each run has its own table, SY_TABLE, and never prints it).
//
// Environment: SY_HOST, SY_PORT, SY_USER, SY_PASS, SY_DB, SY_USER2, SY_PASS2,
// SY_TABLE. Prints one JSON object; exits 1 with {"fatal": ...} on anything
// unexpected.
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

// attempt runs $f and reports its result, or the error mysqli threw.
function attempt(callable $f): array
{
    try {
        return ['ok' => true, 'result' => $f()];
    } catch (mysqli_sql_exception $e) {
        return ['ok' => false, 'errno' => $e->getCode(), 'sqlstate' => $e->getSqlState(), 'error' => $e->getMessage()];
    }
}

// typed keeps each value's PHP type next to it: int 1 and string "1" print
// alike in JSON, and a proxy that changed one into the other would be wrong.
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

function rows(mysqli_result $r): array
{
    $out = $r->fetch_all(MYSQLI_ASSOC);
    $r->free();
    return typed($out);
}

function scalar(mysqli $m, string $sql)
{
    $r = $m->query($sql);
    $row = $r->fetch_row();
    $r->free();
    return $row[0];
}

// fields is what fetch_fields says about each column, minus what names the
// run's own table.
function fields(mysqli_result $r): array
{
    $out = [];
    foreach ($r->fetch_fields() as $f) {
        $out[] = ['name' => $f->name, 'orgname' => $f->orgname, 'db' => $f->db, 'type' => $f->type,
            'length' => $f->length, 'max_length' => $f->max_length, 'flags' => $f->flags,
            'decimals' => $f->decimals, 'charsetnr' => $f->charsetnr];
    }
    return $out;
}

try {
    $host = env('SY_HOST');
    $port = (int)env('SY_PORT');
    $user = env('SY_USER');
    $pass = env('SY_PASS');
    $db = env('SY_DB');
    $user2 = env('SY_USER2');
    $pass2 = env('SY_PASS2');
    $t = env('SY_TABLE');
    $out = [];

    $m = new mysqli($host, $user, $pass, $db, $port);
    $m->set_charset('utf8mb4');
    $out['charset'] = $m->character_set_name();
    $out['protocol_version'] = $m->protocol_version;
    // Frameworks read the server's version string (Doctrine tells MariaDB
    // from MySQL by it) and KILL by thread_id.
    $out['server_info'] = $m->server_info;
    $out['server_version'] = $m->server_version;
    $out['host_info'] = $m->host_info;
    $out['thread_id_is_connection_id'] = $m->thread_id === (int)scalar($m, 'SELECT CONNECTION_ID()');
    $out['connect'] = ['database' => scalar($m, 'SELECT DATABASE()'), 'user' => scalar($m, 'SELECT CURRENT_USER()'),
        'autocommit' => scalar($m, 'SELECT @@autocommit'), 'sql_mode' => scalar($m, 'SELECT @@sql_mode')];

    $m->query("DROP TABLE IF EXISTS `$t`");
    $m->query("CREATE TABLE `$t` (
        id INT AUTO_INCREMENT PRIMARY KEY,
        ti TINYINT, i INT, bi BIGINT, ubi BIGINT UNSIGNED, d DOUBLE, f FLOAT, dec_ DECIMAL(20,6),
        s VARCHAR(100), b MEDIUMBLOB, dt DATETIME(6), da DATE, tm TIME, j JSON, e ENUM('a','b'), bits BIT(8),
        UNIQUE KEY (s)
    ) DEFAULT CHARSET=utf8mb4");

    // query: text protocol results, metadata, info and affected rows.
    $m->query("INSERT INTO `$t` (ti, i, bi, ubi, d, f, dec_, s, dt, da, tm, j, e, bits) VALUES
        (-128, -2147483648, -9223372036854775808, 18446744073709551615, 1.5e300, 3.25, -12345678901234.123456,
         'one', '2024-02-29 13:45:07.123456', '1000-01-01', '-838:59:59', '{\"k\": [1, 2]}', 'a', b'10100101'),
        (127, 2147483647, 9223372036854775807, 0, -0.0, -1.5, 0.000001, 'two', NULL, '9999-12-31', '12:00:00', 'null', 'b', 0),
        (NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'three', NULL, NULL, NULL, NULL, NULL, NULL)");
    $out['query'] = ['affected' => $m->affected_rows, 'insert_id' => $m->insert_id, 'info' => $m->info,
        'warnings' => $m->warning_count];
    $r = $m->query("SELECT id, ti, i, bi, ubi, d, f, dec_, s, dt, da, tm, j, e, bits FROM `$t` ORDER BY id");
    $out['query']['fields'] = fields($r);
    $out['query']['num_rows'] = $r->num_rows;
    $out['query']['rows'] = rows($r);
    $r = $m->query("SELECT 1 AS a, 'x' AS b, NULL AS c, 1.50 AS d, NOW() IS NOT NULL AS e");
    $out['query']['literals'] = rows($r);
    $m->query("UPDATE `$t` SET i = i WHERE id = 1");
    $out['affected']['update_unchanged'] = [$m->affected_rows, $m->info];
    $m->query("UPDATE `$t` SET i = 5 WHERE id IN (1, 2, 3)");
    $out['affected']['update_changed'] = [$m->affected_rows, $m->info];
    $m->query("INSERT INTO `$t` (s, i) VALUES ('one', 6) ON DUPLICATE KEY UPDATE i = VALUES(i)");
    $out['affected']['on_duplicate'] = [$m->affected_rows, $m->insert_id];
    $m->query("REPLACE INTO `$t` (id, s) VALUES (2, 'two')");
    $out['affected']['replace'] = [$m->affected_rows, $m->insert_id];
    $m->query("DELETE FROM `$t` WHERE id > 100");
    $out['affected']['delete_none'] = $m->affected_rows;
    $m->query("SELECT * FROM `$t`");
    $out['affected']['after_select'] = $m->affected_rows;
    $out['affected']['duplicate'] = attempt(fn() => $m->query("INSERT INTO `$t` (s) VALUES ('one')"));
    $out['affected']['after_error'] = $m->affected_rows;
    $out['affected']['too_long'] = attempt(fn() => $m->query("INSERT INTO `$t` (s) VALUES ('" . str_repeat('x', 101) . "')"));
    $m->query("INSERT IGNORE INTO `$t` (s, ti) VALUES ('clipped', 1000)");
    $out['affected']['ignore_warning'] = [$m->affected_rows, $m->warning_count, rows($m->query('SHOW WARNINGS'))];
    $out['insert_id']['last_insert_id'] = scalar($m, 'SELECT LAST_INSERT_ID()');
    $m->query("INSERT INTO `$t` (id, s) VALUES (1000, 'explicit')");
    $out['insert_id']['explicit'] = $m->insert_id;
    $m->query("INSERT INTO `$t` (s) VALUES ('after explicit')");
    $out['insert_id']['next'] = $m->insert_id;
    $out['insert_id']['function'] = scalar($m, 'SELECT LAST_INSERT_ID()');

    // multi_query: several results, an OK among them, an error that ends the batch.
    $batches = [];
    $m->multi_query("SELECT 1 AS a; UPDATE `$t` SET i = 7 WHERE id = 1; SELECT 'x' AS b, 2 AS c; SET @v = 3; SELECT @v");
    do {
        $r = $m->store_result();
        $batches[] = $r ? ['rows' => rows($r)] : ['affected' => $m->affected_rows, 'field_count' => $m->field_count];
    } while ($m->more_results() && $m->next_result());
    $out['multi_query']['results'] = $batches;
    $out['multi_query']['more'] = $m->more_results();
    $out['multi_query']['error'] = attempt(function () use ($m) {
        $seen = [];
        $m->multi_query("SELECT 'first'; SELECT * FROM no_such_table_conformance; SELECT 'never'");
        do {
            if ($r = $m->store_result()) {
                $seen[] = rows($r);
            }
        } while ($m->more_results() && $m->next_result());
        return $seen;
    });
    $out['multi_query']['after'] = scalar($m, 'SELECT 42');

    // Prepared statements: bind_param of every type, results in binary protocol.
    $st = $m->prepare("INSERT INTO `$t` (ti, i, bi, d, s, b, dt) VALUES (?, ?, ?, ?, ?, ?, ?)");
    $out['prepared']['param_count'] = $st->param_count;
    $ti = -5; $i = 123456; $bi = PHP_INT_MAX; $dbl = 3.14159; $s = "quote' \"dq\" \\ back \x00 nul 😀";
    $blob = null; $dt = '2001-02-03 04:05:06.7';
    $st->bind_param('iiidsbs', $ti, $i, $bi, $dbl, $s, $blob, $dt);
    $bytes = '';
    for ($k = 0; $k < 256; $k++) {
        $bytes .= chr($k);
    }
    $st->send_long_data(5, $bytes);
    $st->send_long_data(5, str_repeat($bytes, 400)); // over 100 KB in two chunks
    $st->execute();
    $out['prepared']['execute'] = ['affected' => $st->affected_rows, 'insert_id' => $st->insert_id];
    $blobId = $st->insert_id;
    $ti = 0; $i = 0; $bi = PHP_INT_MIN; $dbl = -0.5; $s = ''; $dt = null;
    $st->send_long_data(5, 'short blob'); // a 'b' parameter's value only travels as long data
    $st->execute();
    $out['prepared']['execute_again'] = ['affected' => $st->affected_rows, 'insert_id' => $st->insert_id];
    $st->close();
    $st = $m->prepare("SELECT id, ti, i, bi, ubi, d, f, dec_, s, LENGTH(b) AS blen, MD5(b) AS bmd5, dt, da, tm, j, e, bits FROM `$t` WHERE id >= ? ORDER BY id");
    $from = 1;
    $st->bind_param('i', $from);
    $st->execute();
    $res = $st->get_result();
    $out['prepared']['fields'] = fields($res);
    $out['prepared']['rows'] = rows($res);
    $st->close();
    $st = $m->prepare("SELECT b FROM `$t` WHERE id = ?");
    $st->bind_param('i', $blobId);
    $st->execute();
    $st->bind_result($got);
    $st->fetch();
    $out['prepared']['blob_roundtrip'] = $got === $bytes . str_repeat($bytes, 400);
    $st->close();
    $out['prepared']['prepare_error'] = attempt(fn() => $m->prepare('SELECT * FROM no_such_table_conformance'));
    $out['prepared']['execute_error'] = attempt(function () use ($m, $t) {
        $st = $m->prepare("INSERT INTO `$t` (s) VALUES (?)");
        $v = 'one';
        $st->bind_param('s', $v);
        return $st->execute();
    });
    $st = $m->prepare('SELECT ? AS a, ? AS b, ? AS c, ? AS d');
    $a = 7; $b = 2.5; $c = 'str'; $d = null;
    $st->bind_param('idss', $a, $b, $c, $d);
    $st->execute();
    $out['prepared']['params_echo'] = rows($st->get_result());
    $st->close();

    // Unbuffered result left half read, then freed: mysqlnd drains the rest.
    $r = $m->query('SELECT seq FROM seq_1_to_2000', MYSQLI_USE_RESULT);
    $out['unbuffered']['first'] = [$r->fetch_row(), $r->fetch_row()];
    $r->free();
    $out['unbuffered']['after'] = scalar($m, 'SELECT 43');
    // A buffered prepared result: num_rows and data_seek.
    $st = $m->prepare('SELECT seq FROM seq_1_to_5');
    $st->execute();
    $st->store_result();
    $st->data_seek(3);
    $st->bind_result($seq);
    $st->fetch();
    $out['stored'] = ['num_rows' => $st->num_rows, 'seek_3' => $seq];
    $st->close();
    // A procedure's results through mysqli: its result sets, then its OK.
    $m->query("CREATE PROCEDURE `{$t}_p`() BEGIN SELECT 1 AS a; SELECT 2 AS b; END");
    $m->multi_query("CALL `{$t}_p`()");
    $calls = [];
    do {
        $r = $m->store_result();
        $calls[] = $r ? rows($r) : ['affected' => $m->affected_rows];
    } while ($m->more_results() && $m->next_result());
    $out['call'] = $calls;
    $m->query("DROP PROCEDURE `{$t}_p`");
    // Session state a pooled server connection must carry: character set
    // and time zone.
    $m->set_charset('latin1');
    $out['session']['latin1'] = ['charset' => $m->character_set_name(), 'bytes' => bin2hex(scalar($m, "SELECT 'é'"))];
    $m->set_charset('utf8mb4');
    $m->query("SET time_zone = '+02:00'");
    $out['session']['time_zone'] = scalar($m, "SELECT CONVERT_TZ('2024-01-01 00:00:00', '+00:00', @@time_zone)");
    $out['session']['from_unixtime'] = scalar($m, 'SELECT FROM_UNIXTIME(0)');
    $m->query("SET time_zone = 'SYSTEM'");

    // Transactions.
    $m->begin_transaction();
    $m->query("INSERT INTO `$t` (s) VALUES ('rolled back')");
    $out['transactions']['in_tx_count'] = scalar($m, "SELECT COUNT(*) FROM `$t` WHERE s = 'rolled back'");
    $m->rollback();
    $out['transactions']['after_rollback'] = scalar($m, "SELECT COUNT(*) FROM `$t` WHERE s = 'rolled back'");
    $m->begin_transaction();
    $m->query("INSERT INTO `$t` (s) VALUES ('committed')");
    $m->savepoint('sp1');
    $m->query("INSERT INTO `$t` (s) VALUES ('to savepoint')");
    $m->release_savepoint('sp1');
    $m->commit();
    $out['transactions']['after_commit'] = scalar($m, "SELECT COUNT(*) FROM `$t` WHERE s IN ('committed', 'to savepoint')");
    $m->autocommit(false);
    $out['transactions']['autocommit_off'] = scalar($m, 'SELECT @@autocommit');
    $m->query("INSERT INTO `$t` (s) VALUES ('autocommit off')");
    $m->rollback();
    $m->autocommit(true);
    $out['transactions']['after_autocommit_rollback'] = scalar($m, "SELECT COUNT(*) FROM `$t` WHERE s = 'autocommit off'");
    $m->begin_transaction(MYSQLI_TRANS_START_READ_ONLY);
    $out['transactions']['read_only_count'] = scalar($m, "SELECT COUNT(*) FROM `$t`");
    $out['transactions']['read_only_write'] = attempt(fn() => $m->query("INSERT INTO `$t` (s) VALUES ('ro')"));
    $m->commit();

    // real_escape_string with utf8mb4, and the escaped text round trip.
    $nasty = "O'Reilly \"q\" \\ \n \r \x00 \x1a 😀 ä 漢字 --";
    $esc = $m->real_escape_string($nasty);
    $out['escape']['escaped'] = bin2hex($esc);
    $m->query("INSERT INTO `$t` (s) VALUES ('$esc')");
    $out['escape']['roundtrip'] = scalar($m, "SELECT s FROM `$t` WHERE id = LAST_INSERT_ID()") === $nasty;
    $out['escape']['length'] = scalar($m, "SELECT CHAR_LENGTH(s) FROM `$t` WHERE s = '$esc'");

    // change_user: to another user, state reset; wrong password keeps the old user.
    $m->query("SET @marker = 'before'");
    $m->query("CREATE TEMPORARY TABLE conf_tmp (x INT)");
    $out['change_user']['ok'] = $m->change_user($user2, $pass2, $db);
    $out['change_user']['user'] = scalar($m, 'SELECT CURRENT_USER()');
    $out['change_user']['marker'] = scalar($m, 'SELECT @marker');
    $out['change_user']['tmp'] = attempt(fn() => scalar($m, 'SELECT COUNT(*) FROM conf_tmp'));
    $out['change_user']['database'] = scalar($m, 'SELECT DATABASE()');
    $out['change_user']['charset'] = $m->character_set_name();
    $out['change_user']['wrong_password'] = attempt(fn() => $m->change_user($user, 'wrong-password', $db));
    $out['change_user']['after_wrong'] = attempt(fn() => scalar($m, 'SELECT CURRENT_USER()'));
    $out['change_user']['back'] = $m->change_user($user, $pass, $db);
    $out['change_user']['back_user'] = scalar($m, 'SELECT CURRENT_USER()');
    $m->close();

    // Persistent connections: the second p: connect reuses the first's
    // connection (same CONNECTION_ID) and mysqli resets its state.
    $p1 = new mysqli("p:$host", $user, $pass, $db, $port);
    $id1 = scalar($p1, 'SELECT CONNECTION_ID()');
    $p1->query("SET @pmarker = 'set'");
    $p1->query('SET SESSION sql_mode = \'ANSI\'');
    $p1->close();
    $p2 = new mysqli("p:$host", $user, $pass, $db, $port);
    $id2 = scalar($p2, 'SELECT CONNECTION_ID()');
    $out['persistent'] = ['same_connection' => $id1 === $id2, 'marker' => scalar($p2, 'SELECT @pmarker'),
        'sql_mode_reset' => scalar($p2, 'SELECT @@sql_mode') === $out['connect']['sql_mode'],
        'select' => scalar($p2, "SELECT COUNT(*) FROM `$t` WHERE s = 'one'")];
    $p2->close();

    // Wrong password at connect.
    $out['wrong_password'] = attempt(fn() => new mysqli($host, $user, 'wrong-password', $db, $port));
    $out['unknown_database'] = attempt(fn() => new mysqli($host, $user, $pass, 'no_such_db_conformance', $port));

    $m = new mysqli($host, $user, $pass, $db, $port);
    $m->query("DROP TABLE `$t`");
    $m->close();
    echo json_encode($out, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_PRETTY_PRINT), "\n";
} catch (Throwable $e) {
    echo json_encode(['fatal' => get_class($e) . ': ' . $e->getMessage() . ' at line ' . $e->getLine()]), "\n";
    exit(1);
}
