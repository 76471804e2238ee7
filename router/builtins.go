package router

import "strings"

// isBuiltin says whether a lowercase function name is a MySQL or MariaDB
// built-in. Anything else is a stored function, which may write, so reads
// calling one go to the primary. The list started from the parser's
// ast/functions.go (TiDB-only names removed) plus MariaDB and MySQL
// functions the parser does not name; a missing built-in only costs read
// scaling, never correctness.
func isBuiltin(name string) bool {
	if strings.HasPrefix(name, "st_") || strings.HasPrefix(name, "mbr") || strings.HasPrefix(name, "json_") ||
		strings.HasPrefix(name, "column_") {
		return true
	}
	switch name {
	case
		"abs", "acos", "add_months", "adddate", "addtime", "aes_decrypt", "aes_encrypt", "and", "any_value",
		"approx_count_distinct", "approx_percentile", "area", "asbinary", "ascii", "asin", "astext", "aswkb",
		"aswkt", "atan", "atan2", "avg", "benchmark", "bin", "bin_to_uuid", "binlog_gtid_pos", "bit_and",
		"bit_count", "bit_length", "bit_or", "bit_xor", "bitand", "bitneg", "bitor", "bitxor", "boundary",
		"buffer", "case", "cast", "ceil", "ceiling", "centroid", "char", "char_func", "char_length",
		"character_length", "charset", "chr", "coalesce", "coercibility", "collation", "compress", "concat",
		"concat_ws", "connection_id", "contains", "conv", "convert", "convert_tz", "convexhull", "cos", "cot",
		"count", "crc32", "crc32c", "crosses", "cume_dist", "curdate", "current_date", "current_role",
		"current_time", "current_timestamp", "current_user", "curtime", "database", "date", "date_add",
		"date_format", "date_sub", "datediff", "day", "dayname", "dayofmonth", "dayofweek", "dayofyear", "decode",
		"decode_oracle", "default", "default_func", "degrees", "dense_rank", "des_decrypt", "des_encrypt",
		"dimension", "disjoint", "distance", "div", "elt", "encode", "encrypt", "endpoint", "envelope", "eq",
		"equals", "exp", "export_set", "exteriorring", "extract", "extractvalue", "field", "find_in_set",
		"first_value", "firstrow", "floor", "format", "format_bytes", "format_nano_time", "format_pico_time",
		"found_rows", "from_base64", "from_days", "from_unixtime", "fts_match_word", "ge", "geometrycollection",
		"geometryn", "geometrytype", "geomfromtext", "geomfromwkb", "get_format", "get_lock", "getparam", "getvar",
		"glength", "greatest", "group_concat", "grouping", "gt", "gtid_subset", "gtid_subtract", "hex", "hour",
		"icu_version", "if", "ifnull", "ilike", "in", "inet6_aton", "inet6_ntoa", "inet_aton", "inet_ntoa",
		"insert", "insert_func", "instr", "intdiv", "interiorringn", "intersects", "interval", "is_free_lock",
		"is_ipv4", "is_ipv4_compat", "is_ipv4_mapped", "is_ipv6", "is_used_lock", "is_uuid", "isclosed", "isempty",
		"isfalse", "isnull", "isring", "issimple", "istrue", "istrue_with_null", "json_array", "json_array_append",
		"json_array_insert", "json_arrayagg", "json_contains", "json_contains_path", "json_depth", "json_extract",
		"json_insert", "json_keys", "json_length", "json_memberof", "json_merge", "json_merge_patch",
		"json_merge_preserve", "json_object", "json_objectagg", "json_overlaps", "json_pretty", "json_quote",
		"json_remove", "json_replace", "json_schema_valid", "json_search", "json_set", "json_storage_free",
		"json_storage_size", "json_sum_crc32", "json_type", "json_unquote", "json_valid", "kdf", "lag", "last_day",
		"last_insert_id", "last_value", "lastval", "lcase", "le", "lead", "least", "left", "leftshift", "length",
		"lengthb", "like", "linefromtext", "linestring", "ln", "load_file", "localtime", "localtimestamp",
		"locate", "log", "log10", "log2", "lower", "lpad", "lt", "ltrim", "make_set", "makedate", "maketime",
		"mask_date", "mask_full", "mask_null", "mask_partial", "master_gtid_wait", "master_pos_wait", "max", "md5",
		"median", "microsecond", "mid", "min", "minus", "minute", "mod", "month", "monthname", "months_between",
		"mul", "multilinestring", "multipoint", "multipolygon", "name_const", "natural_sort_key", "ne", "nextval",
		"not", "now", "nth_value", "ntile", "nulleq", "nullif", "numgeometries", "numinteriorrings", "numpoints",
		"nvl", "nvl2", "oct", "octet_length", "old_password", "or", "ord", "overlaps", "password", "percent_rank",
		"percentile_cont", "percentile_disc", "period_add", "period_diff", "pi", "plus", "point", "pointfromtext",
		"pointn", "polyfromtext", "polygon", "position", "pow", "power", "ps_current_thread_id", "ps_thread_id",
		"quarter", "quote", "radians", "rand", "random_bytes", "rank", "regexp", "regexp_instr", "regexp_like",
		"regexp_replace", "regexp_substr", "release_all_locks", "release_lock", "repeat", "replace", "reverse",
		"right", "rightshift", "roles_graphml", "round", "row", "row_count", "row_number", "rpad", "rtrim",
		"schema", "sec_to_time", "second", "session_user", "setval", "setvar", "sformat", "sha", "sha1", "sha2",
		"sign", "sin", "sleep", "soundex", "source_pos_wait", "space", "sqrt", "srid", "startpoint",
		"statement_digest", "statement_digest_text", "std", "stddev", "stddev_pop", "stddev_samp", "str_to_date",
		"strcmp", "subdate", "substr", "substring", "substring_index", "subtime", "sum", "sys_guid", "sysdate",
		"system_user", "tan", "time", "time_format", "time_to_sec", "timediff", "timestamp", "timestampadd",
		"timestampdiff", "to_base64", "to_char", "to_days", "to_seconds", "touches", "translate", "trim",
		"truncate", "ucase", "unaryminus", "unaryplus", "uncompress", "uncompressed_length", "unhex",
		"unix_timestamp", "updatexml", "upper", "user", "utc_date", "utc_time", "utc_timestamp", "uuid",
		"uuid_short", "uuid_timestamp", "uuid_to_bin", "uuid_v4", "uuid_v7", "uuid_version",
		"validate_password_strength", "value", "values", "var_pop", "var_samp", "variance", "version",
		"wait_for_executed_gtid_set", "wait_until_sql_thread_after_gtids", "week", "weekday", "weekofyear",
		"weight_string", "within", "x", "xor", "y", "year", "yearweek":
		return true
	}
	return false
}
