package router

import (
	"reflect"
	"testing"
)

// The statements that reset MariaDB's counts of wrong passwords, and the
// accounts they name, in the spellings MariaDB accepts; those that keep
// the counts reset nothing (each checked on MariaDB 10.11).
func TestPasswordErrorResets(t *testing.T) {
	acct := func(user, host string) AccountName { return AccountName{User: user, Host: host} }
	for _, tc := range []struct {
		sql  string
		want PasswordErrorReset
	}{
		{"FLUSH PRIVILEGES", PasswordErrorReset{All: true}},
		{"flush no_write_to_binlog privileges", PasswordErrorReset{All: true}},
		{"FLUSH TABLES, PRIVILEGES", PasswordErrorReset{All: true}},
		// Version comments run or not by the server's version: nothing reset.
		{"/*!40101 FLUSH PRIVILEGES */", PasswordErrorReset{}},
		{"SELECT 1 /*M!999999 ; FLUSH PRIVILEGES */", PasswordErrorReset{}},
		{"FLUSH HOSTS", PasswordErrorReset{}},
		{"ALTER USER u ACCOUNT UNLOCK", PasswordErrorReset{Accounts: []AccountName{acct("u", "%")}}},
		{"ALTER USER IF EXISTS 'u'@'%' IDENTIFIED BY 'p, q', `v`@`10.0.%` IDENTIFIED VIA mysql_native_password USING PASSWORD('x') REQUIRE SSL",
			PasswordErrorReset{Accounts: []AccountName{acct("u", "%"), acct("v", "10.0.%")}}},
		{"alter user u@localhost, w@127.0.0.1 with max_queries_per_hour 1", PasswordErrorReset{Accounts: []AccountName{acct("u", "localhost"), acct("w", "127.0.0.1")}}},
		{"ALTER USER 'u' @ 'h' PASSWORD EXPIRE", PasswordErrorReset{Accounts: []AccountName{acct("u", "h")}}},
		{"ALTER USER CURRENT_USER() IDENTIFIED BY 'x'", PasswordErrorReset{CurrentUser: true}},
		{"GRANT SELECT, INSERT (a, b) ON db.t TO u@'%', 'v'@'h' WITH GRANT OPTION", PasswordErrorReset{Accounts: []AccountName{acct("u", "%"), acct("v", "h")}}},
		{"GRANT r1 TO u", PasswordErrorReset{}},
		{"REVOKE SELECT ON db.* FROM u@'%'", PasswordErrorReset{Accounts: []AccountName{acct("u", "%")}}},
		{"REVOKE ALL PRIVILEGES, GRANT OPTION FROM u, v", PasswordErrorReset{Accounts: []AccountName{acct("u", "%"), acct("v", "%")}}},
		{"REVOKE r1 FROM u", PasswordErrorReset{}},
		{"DROP USER IF EXISTS u@'%', v", PasswordErrorReset{Accounts: []AccountName{acct("u", "%"), acct("v", "%")}}},
		{"CREATE OR REPLACE USER u IDENTIFIED BY 'x'", PasswordErrorReset{Accounts: []AccountName{acct("u", "%")}}},
		{"CREATE USER IF NOT EXISTS u IDENTIFIED BY 'x'", PasswordErrorReset{}},
		{"SET PASSWORD FOR u = PASSWORD('x')", PasswordErrorReset{}},
		{"RENAME USER a TO b, 'c'@'h' TO d@'%'", PasswordErrorReset{Renamed: []AccountRename{
			{From: acct("a", "%"), To: acct("b", "%")}, {From: acct("c", "h"), To: acct("d", "%")}}}},
		{"SET GLOBAL max_password_errors = 2", PasswordErrorReset{}},
		{"SELECT 1; FLUSH PRIVILEGES", PasswordErrorReset{All: true}},
		{"ALTER USER", PasswordErrorReset{}},
		{"GRANT SELECT ON", PasswordErrorReset{}},
	} {
		if got := PasswordErrorResets(tc.sql); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.sql, got, tc.want)
		}
	}
}
