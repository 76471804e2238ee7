--- Golden corpus for Classify. Each record: one header line starting with
--- "-- route:", then the statement (any number of lines) up to the next
--- header. Lines starting with "--- " are notes, ignored.
--- route: what Class.Route says; kind: Class.Kind; flags: Class.Flags().
--- Regenerate headers with: go test ./router -run TestGolden -update
--- and review the diff: every changed line is a routing change.

--- WordPress
-- route: replica | kind: read
SELECT option_name, option_value FROM wp_options WHERE autoload = 'yes'
-- route: replica | kind: read
SELECT option_value FROM wp_options WHERE option_name = 'siteurl' LIMIT 1
-- route: replica | kind: read
SELECT autoload FROM wp_options WHERE option_name = 'rewrite_rules'
-- route: primary | kind: write
INSERT INTO `wp_options` (`option_name`, `option_value`, `autoload`) VALUES ('_transient_doing_cron', '1700000000.1234560852050781250000', 'yes') ON DUPLICATE KEY UPDATE `option_name` = VALUES(`option_name`), `option_value` = VALUES(`option_value`), `autoload` = VALUES(`autoload`)
-- route: primary | kind: write
UPDATE `wp_options` SET `option_value` = 'a:0:{}' WHERE `option_name` = 'cron'
-- route: primary | kind: write
DELETE FROM `wp_options` WHERE `option_name` = '_transient_timeout_feed_9bbd59226dc36b9b26cd43f15694c5c3'
-- route: replica | kind: read | flags: calc_found_rows
SELECT SQL_CALC_FOUND_ROWS  wp_posts.ID FROM wp_posts  WHERE 1=1  AND ((wp_posts.post_type = 'post' AND (wp_posts.post_status = 'publish' OR wp_posts.post_status = 'private')))  ORDER BY wp_posts.post_date DESC LIMIT 0, 10
-- route: primary | kind: read | flags: uses_found_rows
SELECT FOUND_ROWS()
-- route: replica | kind: read
SELECT wp_posts.* FROM wp_posts WHERE ID IN (12,15,18)
-- route: replica | kind: read
SELECT post_id, meta_key, meta_value FROM wp_postmeta WHERE post_id IN (12,15,18) ORDER BY meta_id ASC
-- route: replica | kind: read
SELECT t.*, tt.*, tr.object_id FROM wp_terms AS t  INNER JOIN wp_term_taxonomy AS tt ON t.term_id = tt.term_id INNER JOIN wp_term_relationships AS tr ON tr.term_taxonomy_id = tt.term_taxonomy_id WHERE tt.taxonomy IN ('category', 'post_tag', 'post_format') AND tr.object_id IN (12, 15, 18) ORDER BY t.name ASC
-- route: replica | kind: read
SELECT * FROM wp_users WHERE user_login = 'admin' LIMIT 1
-- route: replica | kind: read
SELECT user_id, meta_key, meta_value FROM wp_usermeta WHERE user_id IN (1) ORDER BY umeta_id ASC
-- route: primary | kind: write
INSERT INTO `wp_postmeta` (`post_id`, `meta_key`, `meta_value`) VALUES (1234, '_edit_lock', '1700000000:1')
-- route: primary | kind: write
UPDATE `wp_postmeta` SET `meta_value` = '1700000100:1' WHERE `post_id` = 1234 AND `meta_key` = '_edit_lock'
-- route: replica | kind: read
SELECT meta_id FROM wp_postmeta WHERE meta_key = '_edit_lock' AND post_id = 1234
-- route: primary | kind: write
INSERT INTO `wp_posts` (`post_author`, `post_date`, `post_date_gmt`, `post_content`, `post_content_filtered`, `post_title`, `post_excerpt`, `post_status`, `post_type`, `comment_status`, `ping_status`, `post_password`, `post_name`, `to_ping`, `pinged`, `post_modified`, `post_modified_gmt`, `post_parent`, `menu_order`, `post_mime_type`, `guid`) VALUES (1, '2024-01-02 10:00:00', '2024-01-02 09:00:00', 'Hello; DELETE FROM wp_users; -- not SQL', '', 'Hello', '', 'draft', 'post', 'open', 'open', '', '', '', '', '2024-01-02 10:00:00', '2024-01-02 09:00:00', 0, 0, '', '')
-- route: replica | kind: read
SELECT comment_approved, COUNT( * ) AS total FROM wp_comments WHERE comment_post_ID = 12 GROUP BY comment_approved
-- route: replica | kind: read
SELECT COUNT(*) FROM wp_comments WHERE comment_approved = '0'
-- route: replica | kind: read
SELECT post_status, COUNT( * ) AS num_posts FROM wp_posts WHERE post_type = 'post' GROUP BY post_status
-- route: replica | kind: read
SELECT YEAR(post_date) AS `year`, MONTH(post_date) AS `month`, count(ID) as posts FROM wp_posts  WHERE post_type = 'post' AND post_status = 'publish' GROUP BY YEAR(post_date), MONTH(post_date) ORDER BY post_date DESC
-- route: replica | kind: show
SHOW TABLES LIKE 'wp\\_users'
-- route: replica | kind: read
SELECT @@SESSION.sql_mode
-- route: primary | kind: set
SET SESSION sql_mode='NO_ZERO_IN_DATE,NO_ENGINE_SUBSTITUTION'
-- route: primary | kind: set
SET NAMES utf8mb4 COLLATE utf8mb4_unicode_520_ci
-- route: replica | kind: read
SELECT wp_posts.ID FROM wp_posts LEFT JOIN wp_term_relationships ON (wp_posts.ID = wp_term_relationships.object_id) WHERE 1=1 AND ( wp_term_relationships.term_taxonomy_id IN (5) ) AND wp_posts.post_type = 'post' AND ((wp_posts.post_status = 'publish')) GROUP BY wp_posts.ID ORDER BY wp_posts.post_date DESC LIMIT 0, 5
-- route: replica | kind: read
SELECT   wp_comments.comment_ID
			FROM wp_comments 
			WHERE ( comment_approved = '1' ) AND  comment_post_ID = 12 AND  comment_parent = 0
			ORDER BY wp_comments.comment_date_gmt ASC, wp_comments.comment_ID ASC
-- route: primary | kind: write
DELETE a, b FROM wp_options a, wp_options b
			WHERE a.option_name LIKE '\\_transient\\_%'
			AND a.option_name NOT LIKE '\\_transient\\_timeout\\_%'
			AND b.option_name = CONCAT( '_transient_timeout_', SUBSTRING( a.option_name, 12 ) )
			AND b.option_value < 1700000000
-- route: replica | kind: read
SELECT * FROM wp_posts WHERE (post_type = 'page' AND post_status = 'publish') AND post_name IN ('about')
-- route: primary | kind: ddl | flags: ends_tx
CREATE TABLE wp_termmeta (
  meta_id bigint(20) unsigned NOT NULL auto_increment,
  term_id bigint(20) unsigned NOT NULL default '0',
  meta_key varchar(255) default NULL,
  meta_value longtext,
  PRIMARY KEY  (meta_id),
  KEY term_id (term_id),
  KEY meta_key (meta_key(191))
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci
-- route: primary | kind: ddl | flags: ends_tx
ALTER TABLE wp_options ADD INDEX autoload (autoload)
-- route: replica | kind: show
DESCRIBE wp_posts;
-- route: primary | kind: write
UPDATE wp_posts SET comment_count = (SELECT COUNT(*) FROM wp_comments WHERE comment_post_ID = 12 AND comment_approved = '1') WHERE ID = 12
-- route: replica | kind: read
SELECT ID, post_name, post_parent, post_type FROM wp_posts WHERE post_name IN ('sample-page') AND post_type IN ('page','attachment')
-- route: primary | kind: write
INSERT IGNORE INTO wp_term_relationships (object_id, term_taxonomy_id) VALUES (12, 1)
-- route: replica | kind: read
SELECT term_taxonomy_id FROM wp_term_relationships WHERE object_id = 12
-- route: replica | kind: read
SELECT wp_posts.* FROM wp_posts WHERE 1=1 AND wp_posts.ID = 2 AND wp_posts.post_type = 'page' ORDER BY wp_posts.post_date DESC
-- route: replica | kind: show
SHOW FULL COLUMNS FROM `wp_options`
-- route: replica | kind: read
SELECT COUNT(NULLIF(`meta_value` LIKE '%\"administrator\"%', false)), COUNT(NULLIF(`meta_value` = 'a:0:{}', false)), COUNT(*) FROM wp_usermeta INNER JOIN wp_users ON user_id = ID WHERE meta_key = 'wp_capabilities'
-- route: replica | kind: read
SELECT * FROM wp_postmeta WHERE meta_key = '_wp_attached_file' AND meta_value = '2024/01/photo.jpg'
-- route: replica | kind: read
SELECT option_name FROM wp_options WHERE option_name LIKE '\\_transient\\_%' AND option_name NOT LIKE '\\_transient\\_timeout\\_%'
-- route: replica | kind: read
SELECT DISTINCT meta_key FROM wp_postmeta WHERE meta_key NOT BETWEEN '_' AND '_z' HAVING meta_key NOT LIKE '\\_%' ORDER BY meta_key LIMIT 30
-- route: replica | kind: read
SELECT p.ID FROM wp_posts AS p  WHERE p.post_date < '2024-01-02 10:00:00' AND p.post_type = 'post' AND ( p.post_status = 'publish' OR p.post_status = 'private' ) ORDER BY p.post_date DESC LIMIT 1
-- route: primary | kind: read | flags: side_effects uses_lock
SELECT GET_LOCK('wp_action_scheduler_async_request_queue_runner', 0)
-- route: primary | kind: read | flags: side_effects uses_lock
SELECT RELEASE_LOCK('wp_action_scheduler_async_request_queue_runner')
-- route: primary | kind: write
UPDATE wp_actionscheduler_actions SET claim_id=17, last_attempt_gmt='2024-01-02 10:00:00', last_attempt_local='2024-01-02 11:00:00' WHERE claim_id = 0 AND scheduled_date_gmt <= '2024-01-02 10:00:00' AND status='pending' ORDER BY attempts ASC, scheduled_date_gmt ASC, action_id ASC LIMIT 25
-- route: replica | kind: read
SELECT a.action_id FROM wp_actionscheduler_actions a WHERE a.status = 'pending' AND a.scheduled_date_gmt <= '2024-01-02 10:00:00' ORDER BY a.scheduled_date_gmt ASC LIMIT 0, 5
-- route: replica | kind: read
SELECT wp_woocommerce_sessions.session_value FROM wp_woocommerce_sessions WHERE session_key = 'abc123' LIMIT 1
-- route: primary | kind: write
INSERT INTO wp_woocommerce_sessions (`session_key`, `session_value`, `session_expiry`) VALUES ('abc123', 'a:1:{s:4:\"cart\";s:6:\"a:0:{}\";}', 1700172800) ON DUPLICATE KEY UPDATE `session_value` = VALUES(`session_value`), `session_expiry` = VALUES(`session_expiry`)
-- route: replica | kind: read | flags: calc_found_rows
SELECT SQL_CALC_FOUND_ROWS wp_users.ID FROM wp_users INNER JOIN wp_usermeta ON ( wp_users.ID = wp_usermeta.user_id ) WHERE 1=1 AND ( ( wp_usermeta.meta_key = 'wp_capabilities' AND wp_usermeta.meta_value LIKE '%\"administrator\"%' ) ) ORDER BY user_login ASC LIMIT 0, 20

--- Laravel / Eloquent
-- route: replica | kind: read
select * from `users` where `users`.`id` = 1 limit 1
-- route: replica | kind: read
select * from `users` where `email` = 'ann@example.com' and `users`.`deleted_at` is null limit 1
-- route: primary | kind: write
insert into `users` (`name`, `email`, `password`, `updated_at`, `created_at`) values ('Ann', 'ann@example.com', '$2y$10$92IXUNpkjO0rOQ5byMi.Ye4oKoEa3Ro9llC/.og/at2.uheWG/igi', '2024-01-01 00:00:00', '2024-01-01 00:00:00')
-- route: primary | kind: write
update `users` set `remember_token` = 'xyz', `users`.`updated_at` = '2024-01-01 00:00:01' where `id` = 1
-- route: primary | kind: write
delete from `sessions` where `last_activity` <= 1700000000
-- route: replica | kind: read
select count(*) as aggregate from `posts` where `published` = 1
-- route: replica | kind: read
select `posts`.*, (select count(*) from `comments` where `posts`.`id` = `comments`.`post_id` and `comments`.`deleted_at` is null) as `comments_count` from `posts` where `posts`.`user_id` in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10) and `posts`.`deleted_at` is null order by `created_at` desc limit 15 offset 0
-- route: replica | kind: read
select * from `comments` where `comments`.`post_id` in (1, 2, 3) and `comments`.`deleted_at` is null
-- route: replica | kind: read
select `roles`.*, `role_user`.`user_id` as `pivot_user_id`, `role_user`.`role_id` as `pivot_role_id` from `roles` inner join `role_user` on `roles`.`id` = `role_user`.`role_id` where `role_user`.`user_id` in (1)
-- route: replica | kind: read
select exists(select * from `users` where `email` = 'ann@example.com') as `exists`
-- route: primary | kind: read | flags: locking
select * from `jobs` where `queue` = 'default' and ((`reserved_at` is null and `available_at` <= 1700000000) or (`reserved_at` <= 1699999910)) order by `id` asc limit 1 for update skip locked
-- route: primary | kind: write
update `jobs` set `reserved_at` = 1700000000, `attempts` = 1 where `id` = 5
-- route: primary | kind: write
delete from `jobs` where `id` = 5
-- route: primary | kind: write
insert into `failed_jobs` (`uuid`, `connection`, `queue`, `payload`, `exception`, `failed_at`) values ('9a1b', 'database', 'default', '{\"job\":\"x\"}', 'Exception: boom', '2024-01-01 00:00:00')
-- route: replica | kind: read
select * from `cache` where `key` in ('laravel_cache_settings')
-- route: primary | kind: write
insert into `cache` (`key`, `value`, `expiration`) values ('laravel_cache_settings', 's:3:\"abc\";', 1700003600) on duplicate key update `value` = values(`value`), `expiration` = values(`expiration`)
-- route: primary | kind: write
delete from `cache` where `key` in ('laravel_cache_settings', 'laravel_cache_illuminate:cache:flexible:created:settings')
-- route: replica | kind: read
select * from `migrations` order by `batch` asc, `migration` asc
-- route: replica | kind: read
select max(`batch`) as aggregate from `migrations`
-- route: primary | kind: ddl | flags: ends_tx
create table `migrations` (`id` int unsigned not null auto_increment primary key, `migration` varchar(255) not null, `batch` int not null) default character set utf8mb4 collate 'utf8mb4_unicode_ci'
-- route: primary | kind: ddl | flags: ends_tx
alter table `users` add unique `users_email_unique`(`email`)
-- route: replica | kind: read
select table_name as `name`, (data_length + index_length) as `size`, table_comment as `comment`, engine as `engine`, table_collation as `collation` from information_schema.tables where table_schema = 'laravel' and table_type in ('BASE TABLE', 'SYSTEM VERSIONED') order by table_name
-- route: replica | kind: read
select * from `password_reset_tokens` where `email` = 'ann@example.com' limit 1
-- route: primary | kind: write
update `personal_access_tokens` set `last_used_at` = '2024-01-01 00:00:00', `personal_access_tokens`.`updated_at` = '2024-01-01 00:00:00' where `id` = 3
-- route: replica | kind: read
select `id`, `name` from `categories` where `parent_id` is null order by `sort` asc
-- route: replica | kind: read
select * from `products` where `price` between 10 and 100 and `stock` > 0 order by `price` desc limit 20 offset 40
-- route: primary | kind: read | flags: locking
select * from `orders` where `user_id` = 5 and `status` in ('pending', 'paid') lock in share mode
-- route: primary | kind: read | flags: locking
select * from `accounts` where `id` = 7 limit 1 for update
-- route: primary | kind: savepoint
SAVEPOINT trans2
-- route: primary | kind: savepoint
ROLLBACK TO SAVEPOINT trans2
-- route: primary | kind: savepoint
RELEASE SAVEPOINT trans2
-- route: replica | kind: read
select `users`.* from `users` where exists (select * from `posts` where `users`.`id` = `posts`.`user_id` and `published` = 1)
-- route: replica | kind: read
select * from `users` where json_unquote(json_extract(`options`, '$."language"')) = 'en'
-- route: replica | kind: read
select * from `events` where date(`created_at`) = '2024-01-01'
-- route: primary | kind: write
insert into `tags` (`name`) values ('a'), ('b'), ('c')
-- route: primary | kind: write
insert into `flights` (`departure`, `destination`, `price`) values ('Oakland', 'San Diego', 99), ('Chicago', 'New York', 150) on duplicate key update `price` = values(`price`)
-- route: replica | kind: read
select `user_id`, count(*) as `total` from `orders` group by `user_id` having `total` > 5
-- route: replica | kind: read
(select * from `archived_orders` where `user_id` = 5) union all (select * from `orders` where `user_id` = 5)
-- route: primary | kind: set
set session transaction isolation level read committed
-- route: primary | kind: set
set names 'utf8mb4' collate 'utf8mb4_unicode_ci'
-- route: primary | kind: set
set session sql_mode='ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'
-- route: primary | kind: read | flags: locking
select * from `users` where `users`.`id` = 1 and `users`.`deleted_at` is null limit 1 for update
-- route: primary | kind: write
update `products` set `stock` = `stock` - 1, `products`.`updated_at` = '2024-01-01 00:00:00' where `id` = 9
-- route: replica | kind: read
select `products`.*, `order_product`.`order_id` as `pivot_order_id` from `products` inner join `order_product` on `products`.`id` = `order_product`.`product_id` where `order_product`.`order_id` = 77
-- route: replica | kind: read
select * from `notifications` where `notifications`.`notifiable_type` = 'App\\Models\\User' and `notifications`.`notifiable_id` = 1 and `notifications`.`notifiable_id` is not null and `read_at` is null order by `created_at` desc
-- route: replica | kind: read
select `id`, `title` from `posts` where match (`title`, `body`) against ('developer' in boolean mode)
-- route: replica | kind: read
select * from `telescope_entries` where `type` = 'request' order by `sequence` desc limit 50
-- route: primary | kind: write
insert into `job_batches` (`id`, `name`, `total_jobs`, `pending_jobs`, `failed_jobs`, `failed_job_ids`, `options`, `created_at`, `cancelled_at`, `finished_at`) values ('9b1f', '', 0, 0, 0, '[]', 'a:0:{}', 1700000000, null, null)
-- route: replica | kind: read
select column_name as `name`, data_type as `type_name`, column_type as `type`, collation_name as `collation`, is_nullable as `nullable`, column_default as `default`, column_comment as `comment`, extra as `extra` from information_schema.columns where table_schema = 'laravel' and table_name = 'users' order by ordinal_position asc

--- Drupal
-- route: replica | kind: read
SELECT cid, data, created, expire, serialized, tags, checksum FROM cache_bootstrap WHERE cid IN ( 'system_list', 'module_implements' ) ORDER BY cid
-- route: replica | kind: read
SELECT name, value FROM key_value WHERE name IN ('system.cron_last') AND collection = 'state'
-- route: primary | kind: write
INSERT INTO cache_data (cid, expire, created, tags, checksum, data, serialized) VALUES ('route:/node/1:', -1, 1700000000.123, '4xx-response route_match', '12', 'a:3:{s:4:"path";s:7:"/node/1";}', 1) ON DUPLICATE KEY UPDATE cid = VALUES(cid), expire = VALUES(expire), created = VALUES(created), tags = VALUES(tags), checksum = VALUES(checksum), data = VALUES(data), serialized = VALUES(serialized)
-- route: replica | kind: read
SELECT base_table.vid AS vid, base_table.nid AS nid FROM node base_table INNER JOIN node_field_data node_field_data ON node_field_data.nid = base_table.nid WHERE (node_field_data.status = '1') AND (node_field_data.promote = '1') ORDER BY node_field_data.sticky DESC, node_field_data.created DESC LIMIT 10 OFFSET 0
-- route: replica | kind: read
SELECT revision.vid AS vid, revision.langcode AS langcode, revision.revision_timestamp AS revision_timestamp, revision.revision_uid AS revision_uid FROM node_revision revision WHERE revision.vid IN ('1', '2')
-- route: primary | kind: write
DELETE FROM semaphore WHERE (name = 'cron') AND (value = '1234567890abcdef.12345678')
-- route: primary | kind: write
INSERT INTO semaphore (name, value, expire) VALUES ('cron', '1234567890abcdef.12345678', 1700000900.5)
-- route: replica | kind: read
SELECT expire, value FROM semaphore WHERE name = 'cron'
-- route: primary | kind: write
UPDATE users_field_data SET access = 1700000000 WHERE uid = 1
-- route: replica | kind: read
SELECT COUNT(*) AS expression FROM (SELECT 1 AS expression FROM watchdog w) subquery
-- route: primary | kind: write
INSERT INTO watchdog (uid, type, message, variables, severity, link, location, referer, hostname, timestamp) VALUES ('0', 'php', '%type: @message in %function (line %line of %file).', 'a:0:{}', '3', '', 'http://example.com/', '', '127.0.0.1', '1700000000')
-- route: replica | kind: read
SELECT s.* FROM sessions s WHERE s.sid = 'W3Vrb-_pO1nN3JYv'
-- route: primary | kind: write
INSERT INTO sequences () VALUES ()
-- route: primary | kind: write
DELETE FROM sequences WHERE value < 1000
-- route: replica | kind: read
SELECT name, route, fit FROM router WHERE pattern_outline IN ( '/node/1', '/node/%', '/node' ) AND number_parts >= 2
-- route: replica | kind: read
SELECT base_table.id AS id, base_table.path AS path, base_table.alias AS alias, base_table.langcode AS langcode FROM path_alias base_table WHERE (base_table.status = 1) AND (base_table.alias LIKE '/about' ESCAPE '\\') AND (base_table.langcode IN ('en', 'und')) ORDER BY base_table.langcode ASC, base_table.id DESC
-- route: primary | kind: ddl | flags: ends_tx
TRUNCATE cache_render
-- route: replica | kind: read
SELECT name, data FROM config WHERE collection = '' AND name IN ( 'system.site', 'system.performance' )
-- route: primary | kind: set
SET sql_mode = 'ANSI,TRADITIONAL'
-- route: primary | kind: set
SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED
-- route: replica | kind: show
SHOW TABLES LIKE 'node'
-- route: replica | kind: read
SELECT 1 AS expression FROM users_field_data users_field_data WHERE (name LIKE 'admin' ESCAPE '\\') AND (langcode = 'en') LIMIT 1 OFFSET 0
-- route: replica | kind: read
SELECT VERSION()
-- route: primary | kind: show
SHOW VARIABLES LIKE 'max_allowed_packet'
-- route: primary | kind: read | flags: unparsed
SELECT t.* FROM {node} t
-- route: primary | kind: write
UPDATE queue SET expire = 1700000030 WHERE (item_id = 12) AND (expire = 0)
-- route: replica | kind: read
SELECT data, created, item_id FROM queue q WHERE expire = 0 AND name = 'aggregator_feeds' ORDER BY created, item_id ASC LIMIT 1 OFFSET 0

--- Magento
-- route: replica | kind: read
SELECT `main_table`.* FROM `core_config_data` AS `main_table`
-- route: replica | kind: read
SELECT `store`.* FROM `store`
-- route: replica | kind: read
SELECT `e`.*, `price_index`.`price`, `price_index`.`tax_class_id`, `price_index`.`final_price`, IF(price_index.tier_price IS NOT NULL, LEAST(price_index.min_price, price_index.tier_price), price_index.min_price) AS `minimal_price`, `price_index`.`min_price`, `price_index`.`max_price`, `price_index`.`tier_price` FROM `catalog_product_entity` AS `e` INNER JOIN `catalog_product_index_price` AS `price_index` ON price_index.entity_id = e.entity_id AND price_index.website_id = '1' AND price_index.customer_group_id = 0 WHERE (e.entity_id IN(1, 2, 3)) LIMIT 20
-- route: primary | kind: write
INSERT INTO `quote` (`store_id`, `is_active`, `customer_group_id`, `customer_tax_class_id`, `remote_ip`, `global_currency_code`, `base_currency_code`) VALUES ('1', '1', '0', '3', '127.0.0.1', 'USD', 'USD')
-- route: primary | kind: write
UPDATE `quote` SET `items_count` = 2, `items_qty` = 3.0000 WHERE (entity_id='15')
-- route: replica | kind: read
SELECT `quote`.* FROM `quote` WHERE (`quote`.`entity_id`='15') AND (`quote`.`is_active` = 1) AND (`quote`.`store_id` IN('1'))
-- route: replica | kind: read
SELECT `main_table`.* FROM `cron_schedule` AS `main_table` WHERE (`status` = 'pending') AND (`scheduled_at` <= '2024-01-02 10:00:00')
-- route: primary | kind: write
UPDATE `cron_schedule` SET `status` = 'running', `executed_at` = '2024-01-02 10:00:01' WHERE (schedule_id = 42) AND (status = 'pending')
-- route: primary | kind: read | flags: side_effects uses_lock
SELECT GET_LOCK('cron_group_default', 5)
-- route: primary | kind: read | flags: uses_lock reads_thread_ids
SELECT IS_USED_LOCK('cron_group_default')
-- route: primary | kind: read | flags: side_effects uses_lock
SELECT RELEASE_LOCK('cron_group_default')
-- route: primary | kind: write
DELETE FROM `customer_visitor` WHERE (last_visit_at < '2024-01-01 10:00:00')
-- route: primary | kind: ddl | flags: creates_temp_table
CREATE TEMPORARY TABLE IF NOT EXISTS `catalog_product_index_price_temp` LIKE `catalog_product_index_price_tmp`
-- route: primary | kind: write
INSERT INTO `catalog_product_index_price_temp` SELECT * FROM `catalog_product_index_price_tmp`
-- route: primary | kind: ddl | flags: drops_temp_table
DROP TEMPORARY TABLE IF EXISTS `catalog_product_index_price_temp`
-- route: replica | kind: read
SELECT `eav_attribute`.* FROM `eav_attribute` WHERE (`eav_attribute`.`entity_type_id` = 4) AND (`eav_attribute`.`attribute_code` IN ('name','price','status'))
-- route: replica | kind: read
SELECT `t_d`.`entity_id`, `t_d`.`attribute_id`, IF(t_s.value_id IS NULL, t_d.value, t_s.value) AS `value` FROM `catalog_product_entity_varchar` AS `t_d` LEFT JOIN `catalog_product_entity_varchar` AS `t_s` ON t_s.attribute_id = t_d.attribute_id AND t_s.entity_id = t_d.entity_id AND t_s.store_id = 1 WHERE (t_d.entity_id IN (1, 2)) AND (t_d.attribute_id IN ('73', '97')) AND (t_d.store_id = 0)
-- route: primary | kind: write
INSERT INTO `sequence_order_1` () VALUES ()
-- route: replica | kind: read
SELECT `url_rewrite`.* FROM `url_rewrite` WHERE ((`url_rewrite`.`request_path` IN ('women.html', 'women.html/'))) AND ((`url_rewrite`.`store_id` IN (1)))
-- route: replica | kind: show
SHOW TABLE STATUS LIKE 'sequence_order_1'
-- route: replica | kind: show
DESCRIBE `catalog_product_entity`
-- route: replica | kind: show
SHOW CREATE TABLE `catalog_product_entity`
-- route: replica | kind: show
SHOW INDEX FROM `catalog_product_entity`
-- route: primary | kind: read | flags: locking
SELECT `sales_order`.* FROM `sales_order` WHERE (`entity_id`='100') FOR UPDATE
-- route: primary | kind: set
SET SQL_MODE=''
-- route: primary | kind: set
SET time_zone = '+00:00'
-- route: primary | kind: set
SET NAMES utf8
-- route: primary | kind: write
INSERT INTO `inventory_reservation` (`stock_id`, `sku`, `quantity`, `metadata`) VALUES (1, '24-MB01', -1.0000, '{\"event_type\":\"order_placed\",\"object_type\":\"order\",\"object_id\":\"\",\"object_increment_id\":\"000000001\"}')
-- route: replica | kind: read
SELECT `main_table`.* FROM `sales_order_grid` AS `main_table` WHERE (`main_table`.`created_at` >= '2024-01-01 00:00:00') ORDER BY main_table.created_at DESC LIMIT 20
-- route: primary | kind: read | flags: locking
SELECT `cataloginventory_stock_item`.* FROM `cataloginventory_stock_item` WHERE (product_id IN (1, 2)) AND (stock_id = 1) FOR UPDATE
-- route: primary | kind: write
UPDATE `cataloginventory_stock_item` SET `qty` = CASE product_id WHEN 1 THEN qty-1 ELSE qty END WHERE (product_id IN (1)) AND (website_id = 0)
-- route: replica | kind: read
SELECT COUNT(DISTINCT e.entity_id) FROM `catalog_product_entity` AS `e` INNER JOIN `catalog_category_product_index_store1` AS `cat_index` ON cat_index.product_id=e.entity_id AND cat_index.store_id=1 AND cat_index.visibility IN(2, 4) AND cat_index.category_id=3
-- route: primary | kind: write
INSERT INTO `search_query` (`query_text`, `store_id`, `num_results`, `popularity`, `updated_at`) VALUES ('bag', 1, 14, 1, '2024-01-01 00:00:00') ON DUPLICATE KEY UPDATE `popularity` = `popularity` + 1, `num_results` = VALUES(`num_results`)
-- route: replica | kind: read
SELECT `main_table`.* FROM `magento_bulk` AS `main_table` WHERE (`uuid` = 'c2f1') LIMIT 1

--- phpMyAdmin, information_schema and admin tools
-- route: replica | kind: read
SELECT CURRENT_USER()
-- route: primary | kind: show
SHOW SESSION VARIABLES LIKE 'lower_case_table_names'
-- route: replica | kind: read
SELECT @@lower_case_table_names
-- route: replica | kind: show
SHOW DATABASES
-- route: replica | kind: read
SELECT `SCHEMA_NAME` FROM `INFORMATION_SCHEMA`.`SCHEMATA`, (SELECT DB_first_level FROM ( SELECT DISTINCT SUBSTRING_INDEX(SCHEMA_NAME, '_', 1) DB_first_level FROM INFORMATION_SCHEMA.SCHEMATA WHERE TRUE ) t ORDER BY DB_first_level ASC LIMIT 0, 100) t2 WHERE TRUE AND 1 = LOCATE(CONCAT(DB_first_level, '_'), CONCAT(SCHEMA_NAME, '_')) ORDER BY SCHEMA_NAME ASC
-- route: replica | kind: read
SELECT COUNT(*) FROM `information_schema`.`TABLES` WHERE `TABLE_SCHEMA` = 'shop'
-- route: replica | kind: show
SHOW TABLE STATUS FROM `shop` WHERE `Name` LIKE 'wp\\_%'
-- route: replica | kind: show
SHOW FULL TABLES FROM `shop`
-- route: replica | kind: read
SELECT * FROM `information_schema`.`COLUMNS` WHERE TABLE_SCHEMA = 'shop' AND TABLE_NAME = 'users' ORDER BY ORDINAL_POSITION
-- route: replica | kind: read
SELECT `CONSTRAINT_NAME`, `COLUMN_NAME`, `REFERENCED_TABLE_SCHEMA`, `REFERENCED_TABLE_NAME`, `REFERENCED_COLUMN_NAME` FROM `information_schema`.`KEY_COLUMN_USAGE` WHERE `TABLE_SCHEMA` = 'shop' AND `TABLE_NAME` = 'orders' AND `REFERENCED_TABLE_NAME` IS NOT NULL
-- route: replica | kind: show
SHOW GRANTS
-- route: replica | kind: read
SELECT 1 FROM mysql.user LIMIT 1
-- route: primary | kind: show | flags: unparsed
SHOW BINARY LOGS
-- route: primary | kind: show
SHOW MASTER STATUS
-- route: primary | kind: show
SHOW SLAVE STATUS
-- route: primary | kind: show | flags: unparsed
SHOW ALL SLAVES STATUS
-- route: primary | kind: show
SHOW REPLICA STATUS
-- route: primary | kind: show | flags: reads_thread_ids
SHOW PROCESSLIST
-- route: primary | kind: show | flags: reads_thread_ids
SHOW FULL PROCESSLIST
-- route: primary | kind: show | flags: global_status
SHOW GLOBAL STATUS
-- route: primary | kind: show | flags: session_status
SHOW STATUS LIKE 'Ssl_cipher'
-- route: primary | kind: show | flags: session_status
SHOW SESSION STATUS WHERE Variable_name LIKE 'Ssl%'
-- route: primary | kind: show | flags: multi
SHOW STATUS; SELECT 1
-- route: primary | kind: show
SHOW VARIABLES
-- route: replica | kind: show
SHOW ENGINES
-- route: replica | kind: show
SHOW CHARACTER SET
-- route: replica | kind: show
SHOW COLLATION
-- route: replica | kind: read
SELECT * FROM `shop`.`users` LIMIT 0, 25
-- route: replica | kind: read
SELECT COUNT(*) AS `Rows`, `status` FROM `shop`.`orders` GROUP BY `status` ORDER BY `status`
-- route: replica | kind: show
SHOW PROCEDURE STATUS WHERE Db = 'shop'
-- route: replica | kind: show
SHOW CREATE PROCEDURE `shop`.`sp_update_stats`
-- route: replica | kind: show
SHOW TRIGGERS FROM `shop` LIKE 'users'
-- route: replica | kind: read
SELECT `ROUTINE_NAME` AS `name`, `ROUTINE_TYPE` AS `type` FROM `information_schema`.`ROUTINES` WHERE `ROUTINE_SCHEMA` = 'shop'
-- route: primary | kind: show | flags: uses_found_rows
SHOW WARNINGS
-- route: primary | kind: show | flags: uses_found_rows
SHOW COUNT(*) WARNINGS
-- route: primary | kind: show | flags: unparsed
SHOW ERRORS LIMIT 10
-- route: primary | kind: set
SET collation_connection = 'utf8mb4_unicode_ci'
-- route: replica | kind: read
SELECT `PLUGIN_NAME`, `PLUGIN_DESCRIPTION` FROM `information_schema`.`PLUGINS` WHERE `PLUGIN_TYPE` = 'AUTHENTICATION'
-- route: replica | kind: show
EXPLAIN SELECT * FROM `shop`.`users` WHERE id = 1
-- route: replica | kind: read
SELECT @@have_profiling
-- route: primary | kind: set
SET PROFILING=1
-- route: primary | kind: show
SHOW PROFILES
-- route: primary | kind: admin | flags: kills
KILL 123
-- route: primary | kind: admin | flags: kills
KILL QUERY 123
-- route: primary | kind: admin | flags: unparsed ends_tx
CHECK TABLE `users`
-- route: primary | kind: admin | flags: ends_tx
ANALYZE TABLE `users`
-- route: primary | kind: admin | flags: ends_tx
OPTIMIZE TABLE `users`
-- route: primary | kind: admin | flags: unparsed ends_tx
REPAIR TABLE `users`
-- route: primary | kind: admin | flags: unparsed
CHECKSUM TABLE `users`
-- route: primary | kind: admin | flags: ends_tx affects_new_logins
FLUSH PRIVILEGES
-- route: primary | kind: admin | flags: ends_tx
FLUSH TABLES
-- route: primary | kind: ddl | flags: ends_tx
CREATE DATABASE `newdb` DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci
-- route: primary | kind: ddl | flags: ends_tx
DROP DATABASE `olddb`
-- route: primary | kind: admin | flags: ends_tx affects_new_logins
GRANT ALL PRIVILEGES ON `shop`.* TO 'app'@'%'
-- route: primary | kind: admin | flags: ends_tx affects_new_logins
CREATE USER 'reporter'@'%' IDENTIFIED BY 's3cret'
-- route: replica | kind: show
SHOW CREATE DATABASE `shop`
-- route: primary | kind: show
SHOW OPEN TABLES
-- route: primary | kind: show | flags: unparsed
SHOW ENGINE INNODB STATUS
-- route: replica | kind: read
SELECT TABLE_NAME, TABLE_ROWS, DATA_LENGTH FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY DATA_LENGTH DESC
-- route: primary | kind: read | flags: reads_thread_ids
SELECT * FROM information_schema.PROCESSLIST WHERE COMMAND != 'Sleep'
-- route: replica | kind: read
SELECT * FROM performance_schema.events_statements_summary_by_digest ORDER BY SUM_TIMER_WAIT DESC LIMIT 10

--- mysqldump / mariadb-dump output and restores
-- route: primary | kind: set | flags: sets_user_var
/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */
-- route: primary | kind: set
/*!40101 SET NAMES utf8mb4 */
-- route: primary | kind: set
/*!40103 SET TIME_ZONE='+00:00' */
-- route: primary | kind: set | flags: sets_user_var
/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */
-- route: primary | kind: set | flags: sets_user_var
/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */
-- route: primary | kind: set | flags: unparsed sets_user_var
/*M!100616 SET @OLD_NOTE_VERBOSITY=@@NOTE_VERBOSITY, NOTE_VERBOSITY=0 */
-- route: primary | kind: ddl | flags: ends_tx
DROP TABLE IF EXISTS `users`
-- route: primary | kind: set | flags: sets_user_var
/*!40101 SET @saved_cs_client     = @@character_set_client */
-- route: primary | kind: ddl | flags: ends_tx
CREATE TABLE `users` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `name` varchar(64) NOT NULL DEFAULT 'DELETE me -- not a comment',
  PRIMARY KEY (`id`)
) ENGINE=InnoDB AUTO_INCREMENT=3 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci
-- route: primary | kind: lock_tables | flags: ends_tx
LOCK TABLES `users` WRITE
-- route: primary | kind: ddl | flags: ends_tx
/*!40000 ALTER TABLE `users` DISABLE KEYS */
-- route: primary | kind: write
INSERT INTO `users` VALUES (1,'a'),(2,'b; DROP TABLE users')
-- route: primary | kind: ddl | flags: ends_tx
/*!40000 ALTER TABLE `users` ENABLE KEYS */
-- route: primary | kind: unlock_tables
UNLOCK TABLES
-- route: primary | kind: set | flags: reads_user_var
/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */
-- route: primary | kind: ddl | flags: ends_tx
/*!50001 CREATE ALGORITHM=UNDEFINED */
/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */
/*!50001 VIEW `v_users` AS select `users`.`id` AS `id` from `users` */
-- route: primary | kind: set
SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ
-- route: primary | kind: begin | flags: ends_tx starts_tx
START TRANSACTION /*!40100 WITH CONSISTENT SNAPSHOT */
-- route: primary | kind: admin | flags: ends_tx
FLUSH /*!40101 LOCAL */ TABLES
-- route: primary | kind: lock_tables | flags: ends_tx
FLUSH TABLES WITH READ LOCK
-- route: primary | kind: show
SHOW VARIABLES LIKE 'gtid\\_mode'
-- route: replica | kind: show
SHOW CREATE DATABASE IF NOT EXISTS `shop`
-- route: replica | kind: read
SELECT /*!40001 SQL_NO_CACHE */ * FROM `users`
-- route: replica | kind: show
SHOW FIELDS FROM `users`
-- route: replica | kind: read
SELECT LOGFILE_GROUP_NAME, FILE_NAME, TOTAL_EXTENTS, INITIAL_SIZE, ENGINE, EXTRA FROM INFORMATION_SCHEMA.FILES WHERE ENGINE = 'ndbcluster' AND FILE_TYPE = 'UNDO LOG' AND FILE_NAME IS NOT NULL AND LOGFILE_GROUP_NAME IS NOT NULL GROUP BY LOGFILE_GROUP_NAME, FILE_NAME, ENGINE, TOTAL_EXTENTS, INITIAL_SIZE ORDER BY LOGFILE_GROUP_NAME
-- route: primary | kind: read | flags: server_var
SELECT @@GLOBAL.GTID_EXECUTED

--- MariaDB-specific syntax
-- route: primary | kind: write | flags: unparsed
INSERT INTO t (a) VALUES (1) RETURNING id
-- route: primary | kind: write | flags: unparsed
DELETE FROM t WHERE id = 3 RETURNING id, name
-- route: primary | kind: write | flags: unparsed
REPLACE INTO t VALUES (1, 'x') RETURNING *
-- route: primary | kind: ddl | flags: ends_tx
CREATE SEQUENCE s START WITH 100 INCREMENT BY 10
-- route: primary | kind: ddl | flags: unparsed ends_tx
CREATE OR REPLACE SEQUENCE s START WITH 1 INCREMENT BY 1 CACHE 1000
-- route: primary | kind: read | flags: side_effects
SELECT NEXTVAL(s)
-- route: primary | kind: read | flags: side_effects
SELECT NEXT VALUE FOR s
-- route: primary | kind: read | flags: uses_last_insert_id
SELECT LASTVAL(s)
-- route: primary | kind: read | flags: unparsed uses_last_insert_id
SELECT PREVIOUS VALUE FOR s
-- route: primary | kind: read | flags: side_effects
SELECT SETVAL(s, 1000)
-- route: primary | kind: ddl | flags: ends_tx
ALTER SEQUENCE s RESTART WITH 1
-- route: primary | kind: ddl | flags: ends_tx
DROP SEQUENCE s
-- route: primary | kind: write | flags: side_effects
INSERT INTO orders (id, note) VALUES (NEXT VALUE FOR order_seq, 'x')
-- route: primary | kind: read | flags: unparsed
SELECT * FROM t FOR SYSTEM_TIME AS OF TIMESTAMP '2024-01-01 00:00:00'
-- route: primary | kind: ddl | flags: unparsed ends_tx
CREATE OR REPLACE TABLE t (a INT)
-- route: primary | kind: ddl | flags: unparsed ends_tx
CREATE TABLE t (x INT) WITH SYSTEM VERSIONING
-- route: replica | kind: read
SELECT JSON_DETAILED('{"a":1}')
-- route: primary | kind: read | flags: unparsed
SELECT * FROM t LIMIT 10 ROWS EXAMINED 1000
-- route: replica | kind: read
SET STATEMENT max_statement_time=60 FOR SELECT * FROM big_table
-- route: primary | kind: write
SET STATEMENT sql_mode='' FOR UPDATE t SET a = NULL WHERE id = 1
-- route: primary | kind: read | flags: unparsed
SELECT * FROM JSON_TABLE('[1,2]', '$[*]' COLUMNS (x INT PATH '$')) AS jt
-- route: replica | kind: read
WITH RECURSIVE cte AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM cte WHERE n < 10) SELECT * FROM cte
-- route: replica | kind: read
SELECT a, ROW_NUMBER() OVER (PARTITION BY a ORDER BY b) AS rn FROM t
-- route: replica | kind: read
SELECT a FROM t INTERSECT SELECT a FROM u
-- route: replica | kind: read
SELECT a FROM t EXCEPT SELECT a FROM u
-- route: primary | kind: show | flags: unparsed
SHOW SLAVE 'conn1' STATUS
-- route: replica | kind: read
SELECT BINLOG_GTID_POS('mariadb-bin.000001', 600)
-- route: replica | kind: read
SELECT MASTER_GTID_WAIT('0-1-100', 1)
-- route: primary | kind: read | flags: server_var
SELECT @@gtid_current_pos
-- route: primary | kind: read | flags: server_var
SELECT @@last_gtid
-- route: primary | kind: other | flags: unparsed
BEGIN NOT ATOMIC
  DECLARE x INT DEFAULT 0;
  UPDATE t SET a = a + 1;
  COMMIT;
END
-- route: primary | kind: ddl | flags: unparsed ends_tx
CREATE PROCEDURE p_move(IN src INT, IN dst INT)
BEGIN
  START TRANSACTION;
  UPDATE accounts SET balance = balance - 10 WHERE id = src;
  UPDATE accounts SET balance = balance + 10 WHERE id = dst;
  COMMIT;
END
-- route: primary | kind: ddl | flags: unparsed ends_tx
CREATE FUNCTION add_one(x INT) RETURNS INT DETERMINISTIC RETURN x + 1
-- route: primary | kind: ddl | flags: unparsed ends_tx
CREATE TRIGGER trg_users_bi BEFORE INSERT ON users FOR EACH ROW SET NEW.created_at = NOW()
-- route: primary | kind: xa | flags: unparsed starts_tx
XA START 'xid1'
-- route: primary | kind: xa | flags: unparsed
XA END 'xid1'
-- route: primary | kind: xa | flags: unparsed
XA PREPARE 'xid1'
-- route: primary | kind: xa | flags: unparsed ends_tx
XA COMMIT 'xid1'
-- route: primary | kind: xa | flags: unparsed ends_tx
XA ROLLBACK 'xid1'
-- route: primary | kind: xa | flags: unparsed
XA RECOVER
-- route: primary | kind: other | flags: unparsed
HANDLER t OPEN
-- route: primary | kind: other | flags: unparsed
HANDLER t READ `PRIMARY` FIRST
-- route: primary | kind: other | flags: unparsed
HANDLER t CLOSE
-- route: primary | kind: read | flags: unparsed
ANALYZE SELECT * FROM t WHERE a = 1
-- route: primary | kind: write | flags: unparsed
ANALYZE FORMAT=JSON DELETE FROM t WHERE a = 1
-- route: primary | kind: show | flags: unparsed
EXPLAIN EXTENDED SELECT * FROM t
-- route: primary | kind: show | flags: unparsed
SHOW EXPLAIN FOR 123
-- route: replica | kind: read
SELECT SQL_NO_CACHE * FROM t
-- route: replica | kind: read
SELECT HIGH_PRIORITY * FROM t
-- route: primary | kind: write
INSERT DELAYED INTO t VALUES (1)
-- route: primary | kind: write
INSERT INTO t SET a = 1, b = 2
-- route: primary | kind: write
UPDATE LOW_PRIORITY t SET a = 1 ORDER BY id LIMIT 10
-- route: primary | kind: write
DELETE FROM t ORDER BY id LIMIT 100
-- route: primary | kind: write
DELETE QUICK IGNORE FROM t WHERE created < '2020-01-01'
-- route: primary | kind: set
SET SESSION max_statement_time = 5
-- route: replica | kind: read
SELECT 1 FROM DUAL
-- route: replica | kind: read
SELECT NOW() FROM DUAL WHERE 1
-- route: primary | kind: admin | flags: kills
KILL CONNECTION 5
-- route: primary | kind: admin | flags: unparsed kills
KILL QUERY ID 5
-- route: primary | kind: admin
SHUTDOWN
-- route: primary | kind: admin | flags: affects_new_logins
SET GLOBAL read_only = 1
-- route: primary | kind: admin | flags: ends_tx
FLUSH BINARY LOGS
-- route: primary | kind: admin | flags: unparsed ends_tx
CHANGE MASTER TO MASTER_HOST='db1', MASTER_PORT=3306, MASTER_USE_GTID=slave_pos
-- route: primary | kind: admin | flags: unparsed ends_tx
START SLAVE
-- route: primary | kind: admin | flags: unparsed ends_tx
STOP SLAVE
-- route: primary | kind: admin | flags: unparsed ends_tx
RESET SLAVE ALL
-- route: primary | kind: admin | flags: unparsed ends_tx
PURGE BINARY LOGS BEFORE '2024-01-01 00:00:00'
-- route: primary | kind: admin | flags: unparsed ends_tx
INSTALL SONAME 'ha_rocksdb'
-- route: primary | kind: read | flags: unparsed locking
SELECT * FROM t WHERE id = 1 /*M!100600 FOR UPDATE */
-- route: primary | kind: read | flags: locking
SELECT * FROM t WHERE id = 1 FOR UPDATE NOWAIT
-- route: primary | kind: read | flags: locking
SELECT * FROM t WHERE id = 1 FOR UPDATE WAIT 5
-- route: primary | kind: read | flags: locking
SELECT * FROM t WHERE id = 1 FOR SHARE
-- route: primary | kind: read | flags: locking
SELECT * FROM t1 WHERE a IN (SELECT b FROM t2 FOR UPDATE)

--- Files, variables, prepared statements, procedures
-- route: primary | kind: write
LOAD DATA LOCAL INFILE '/tmp/x.csv' INTO TABLE t FIELDS TERMINATED BY ',' LINES TERMINATED BY '\n'
-- route: primary | kind: read | flags: unparsed side_effects
SELECT * INTO OUTFILE '/tmp/x.csv' FROM t
-- route: primary | kind: read | flags: unparsed side_effects
SELECT * FROM t INTO DUMPFILE '/tmp/x.bin'
-- route: primary | kind: read | flags: unparsed sets_user_var
SELECT a, b INTO @a, @b FROM t WHERE id = 1
-- route: primary | kind: read | flags: unparsed sets_user_var
SELECT COUNT(*) INTO @n FROM t
-- route: primary | kind: read | flags: unparsed sets_user_var
SELECT id FROM t WHERE a = 1 INTO @id
-- route: primary | kind: read | flags: sets_user_var reads_user_var
SELECT @rownum := @rownum + 1 AS `rank`, name FROM players, (SELECT @rownum := 0) r ORDER BY score DESC
-- route: primary | kind: set | flags: sets_user_var
SET @rownum := 0
-- route: primary | kind: set | flags: sets_user_var reads_user_var
SET @sql = CONCAT('SELECT * FROM ', @tbl)
-- route: primary | kind: prepare | flags: reads_user_var
PREPARE stmt FROM @sql
-- route: primary | kind: execute
EXECUTE stmt
-- route: primary | kind: deallocate
DEALLOCATE PREPARE stmt
-- route: primary | kind: deallocate
DROP PREPARE stmt
-- route: primary | kind: prepare
PREPARE stmt1 FROM 'SELECT SQRT(POW(?,2) + POW(?,2)) AS hypotenuse'
-- route: primary | kind: execute | flags: reads_user_var
EXECUTE stmt1 USING @a, @b
-- route: primary | kind: call | flags: sets_user_var reads_user_var
CALL sp_update_stats(10, @total)
-- route: primary | kind: call
CALL sp_report()
-- route: replica | kind: read
DO SLEEP(0.5)
-- route: primary | kind: read | flags: side_effects uses_lock
DO RELEASE_LOCK('x')
-- route: primary | kind: read | flags: reads_user_var
SELECT @a, @b
-- route: primary | kind: read | flags: reads_user_var
SELECT * FROM t WHERE id = @last_id

--- Locks and per-connection results
-- route: primary | kind: read | flags: side_effects uses_lock
SELECT GET_LOCK('lock1', 10)
-- route: primary | kind: read | flags: side_effects uses_lock
SELECT RELEASE_ALL_LOCKS()
-- route: primary | kind: read | flags: uses_lock
SELECT IS_FREE_LOCK('lock1')
-- route: primary | kind: read | flags: side_effects uses_lock
DO GET_LOCK('x', 0)
-- route: primary | kind: read | flags: uses_last_insert_id
SELECT LAST_INSERT_ID()
-- route: primary | kind: read | flags: side_effects uses_last_insert_id
SELECT LAST_INSERT_ID(42)
-- route: primary | kind: write | flags: side_effects uses_last_insert_id
UPDATE seq SET id = LAST_INSERT_ID(id + 1)
-- route: primary | kind: read | flags: uses_found_rows
SELECT ROW_COUNT()
-- route: primary | kind: read | flags: uses_last_insert_id
SELECT @@identity
-- route: primary | kind: read | flags: uses_found_rows
SELECT @@warning_count, @@error_count
-- route: primary | kind: read | flags: server_var
SELECT @@read_only, @@innodb_read_only
-- route: primary | kind: read | flags: server_var
SELECT @@hostname, @@server_id
-- route: replica | kind: read | flags: uses_connection_id
SELECT CONNECTION_ID()

--- Transactions and session state
-- route: primary | kind: begin | flags: ends_tx starts_tx
BEGIN
-- route: primary | kind: begin | flags: unparsed ends_tx starts_tx
BEGIN WORK
-- route: primary | kind: begin | flags: ends_tx starts_tx
START TRANSACTION
-- route: replica | kind: begin_read_only | flags: ends_tx starts_tx read_only_tx
START TRANSACTION READ ONLY
-- route: primary | kind: begin | flags: ends_tx starts_tx
START TRANSACTION READ WRITE
-- route: primary | kind: begin | flags: ends_tx starts_tx
START TRANSACTION WITH CONSISTENT SNAPSHOT
-- route: primary | kind: begin_read_only | flags: unparsed ends_tx starts_tx read_only_tx
START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY
-- route: primary | kind: commit | flags: ends_tx
COMMIT
-- route: primary | kind: commit | flags: unparsed ends_tx
COMMIT WORK
-- route: primary | kind: commit | flags: ends_tx starts_tx
COMMIT AND CHAIN
-- route: primary | kind: rollback | flags: ends_tx
ROLLBACK
-- route: primary | kind: rollback | flags: unparsed ends_tx
ROLLBACK WORK
-- route: primary | kind: savepoint
ROLLBACK TO sp1
-- route: primary | kind: savepoint | flags: unparsed
ROLLBACK WORK TO SAVEPOINT sp1
-- route: primary | kind: set | flags: autocommit=0
SET autocommit=0
-- route: primary | kind: set | flags: autocommit=1
SET autocommit=1
-- route: primary | kind: set | flags: autocommit=1
SET autocommit = ON
-- route: primary | kind: set | flags: autocommit=0
SET autocommit = OFF
-- route: primary | kind: set | flags: autocommit=0
SET @@autocommit = 0
-- route: primary | kind: set | flags: autocommit=1
SET SESSION autocommit = 1
-- route: primary | kind: set | flags: autocommit=0
SET @@session.autocommit=0
-- route: primary | kind: set | flags: autocommit=0
SET LOCAL autocommit=0
-- route: primary | kind: set | flags: autocommit=1
SET autocommit = DEFAULT
-- route: primary | kind: set | flags: autocommit=0 reads_user_var
SET autocommit = @saved_autocommit
-- route: primary | kind: admin | flags: affects_new_logins
SET GLOBAL autocommit=0
-- route: primary | kind: set | flags: autocommit=0
SET autocommit=0, sql_mode=''
-- route: primary | kind: set | flags: autocommit=0
SET names utf8, autocommit = 0
-- route: primary | kind: set | flags: autocommit=1 sets_user_var
SET @x = 5, @@session.autocommit = 1
-- route: primary | kind: set
SET TRANSACTION ISOLATION LEVEL SERIALIZABLE
-- route: primary | kind: set
SET SESSION TRANSACTION READ ONLY
-- route: primary | kind: set
SET character_set_results = NULL
-- route: primary | kind: set
SET NAMES 'utf8mb4' COLLATE 'utf8mb4_general_ci'
-- route: primary | kind: set
SET CHARACTER SET utf8mb4
-- route: primary | kind: set
SET sql_select_limit=DEFAULT
-- route: primary | kind: set
SET SQL_SAFE_UPDATES=1
-- route: primary | kind: set
SET @@session.max_execution_time = 1000
-- route: primary | kind: set
SET wait_timeout=28800
-- route: primary | kind: use | flags: schema=shop
USE shop
-- route: primary | kind: use | flags: schema=My-Db
USE `My-Db`
-- route: replica | kind: read
SELECT @@version_comment LIMIT 1
-- route: replica | kind: read
SELECT DATABASE(), USER() LIMIT 1
-- route: replica | kind: read
SELECT @@session.transaction_isolation
-- route: replica | kind: read
SELECT @@max_allowed_packet
-- route: replica | kind: read
/* mysql-connector-java-8.0.33 (Revision: 7d6b0800528b6b25c68b52dc10d6c1c8429c100c) */SELECT  @@session.auto_increment_increment AS auto_increment_increment, @@character_set_client AS character_set_client, @@character_set_connection AS character_set_connection, @@character_set_results AS character_set_results, @@character_set_server AS character_set_server, @@collation_server AS collation_server, @@collation_connection AS collation_connection, @@init_connect AS init_connect, @@interactive_timeout AS interactive_timeout, @@license AS license, @@lower_case_table_names AS lower_case_table_names, @@max_allowed_packet AS max_allowed_packet, @@net_write_timeout AS net_write_timeout, @@performance_schema AS performance_schema, @@sql_mode AS sql_mode, @@system_time_zone AS system_time_zone, @@time_zone AS time_zone, @@transaction_isolation AS transaction_isolation, @@wait_timeout AS wait_timeout
-- route: primary | kind: lock_tables | flags: ends_tx
LOCK TABLES t READ, u WRITE
-- route: primary | kind: lock_tables | flags: unparsed ends_tx
LOCK TABLE t AS t1 READ LOCAL
-- route: primary | kind: ddl | flags: creates_temp_table
CREATE TEMPORARY TABLE tmp_ids (id INT PRIMARY KEY)
-- route: primary | kind: ddl | flags: creates_temp_table
CREATE TEMPORARY TABLE tmp_sales AS SELECT product_id, SUM(qty) AS q FROM sales GROUP BY product_id
-- route: primary | kind: ddl | flags: unparsed creates_temp_table
CREATE OR REPLACE TEMPORARY TABLE tmp_x (a INT) ENGINE=MEMORY
-- route: primary | kind: ddl | flags: drops_temp_table
DROP TEMPORARY TABLE tmp_ids
-- route: primary | kind: ddl | flags: ends_tx
DROP TABLE tmp_ids

--- sysbench oltp
-- route: replica | kind: read
SELECT c FROM sbtest1 WHERE id=5000
-- route: replica | kind: read
SELECT c FROM sbtest1 WHERE id BETWEEN 5000 AND 5099
-- route: replica | kind: read
SELECT SUM(k) FROM sbtest1 WHERE id BETWEEN 5000 AND 5099
-- route: replica | kind: read
SELECT c FROM sbtest1 WHERE id BETWEEN 5000 AND 5099 ORDER BY c
-- route: replica | kind: read
SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN 5000 AND 5099 ORDER BY c
-- route: primary | kind: write
UPDATE sbtest1 SET k=k+1 WHERE id=5000
-- route: primary | kind: write
UPDATE sbtest1 SET c='83868641912-28773972837-60736120486-75162659906-27563526494-20381887404-41576422241-93426793964-56405065102-33518432330' WHERE id=5000
-- route: primary | kind: write
DELETE FROM sbtest1 WHERE id=5000
-- route: primary | kind: write
INSERT INTO sbtest1 (id, k, c, pad) VALUES (5000, 4993, '83868641912-28773972837-60736120486-75162659906-27563526494-20381887404-41576422241-93426793964-56405065102-33518432330', '67847967377-48000963322-62604785301-91415491898-96926520291')

--- Functions
-- route: replica | kind: read
SELECT uuid(), rand(), now(6), sysdate()
-- route: replica | kind: read
SELECT SLEEP(2)
-- route: replica | kind: read
SELECT BENCHMARK(1000000, MD5('x'))
-- route: replica | kind: read
SELECT LOAD_FILE('/etc/hosts')
-- route: primary | kind: read | flags: stored_func
SELECT myschema.my_func(1)
-- route: primary | kind: read | flags: stored_func
SELECT calc_tax(price) FROM items
-- route: replica | kind: read
SELECT * FROM articles WHERE MATCH(title, body) AGAINST ('+mysql -oracle' IN BOOLEAN MODE)
-- route: replica | kind: read
SELECT CAST(a AS CHAR), CONVERT(b USING utf8mb4) FROM t
-- route: replica | kind: read
SELECT GROUP_CONCAT(DISTINCT name ORDER BY name SEPARATOR ', ') FROM t
-- route: replica | kind: read
SELECT ST_Distance_Sphere(POINT(1, 2), POINT(3, 4))
-- route: replica | kind: read
SELECT JSON_OBJECTAGG(k, v) FROM t
-- route: replica | kind: read
SELECT a FROM t WHERE b REGEXP '^x'
-- route: replica | kind: read
SELECT INET_ATON('10.0.0.1'), INET6_NTOA(ip) FROM hosts
-- route: replica | kind: read
SELECT UNIX_TIMESTAMP(), FROM_UNIXTIME(1700000000)
-- route: replica | kind: read
SELECT IFNULL(a, 0), COALESCE(b, c), NULLIF(d, 0), IF(e > 0, 'pos', 'neg') FROM t
-- route: replica | kind: read
SELECT DATE_FORMAT(created_at, '%Y-%m') AS ym, COUNT(*) FROM orders GROUP BY ym
-- route: replica | kind: read
SELECT CHAR(65), INSERT('abc', 1, 1, 'x'), LEFT(name, 3) FROM t
-- route: replica | kind: read
SELECT SUM(amount) OVER (ORDER BY day ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) FROM daily
-- route: replica | kind: read
SELECT DATE_ADD(NOW(), INTERVAL 1 DAY), TIMESTAMPDIFF(SECOND, a, b) FROM t

--- Tricky comments, strings, quoting
-- route: replica | kind: read
SELECT 'DELETE FROM users' AS s
-- route: replica | kind: read
SELECT "UPDATE t SET a=1" AS s
-- route: replica | kind: read
SELECT * FROM `delete` WHERE `update` = 1
-- route: replica | kind: read
SELECT * FROM t -- DELETE FROM t
WHERE a = 1
-- route: replica | kind: read
SELECT * FROM t # DROP TABLE t
LIMIT 1
-- route: replica | kind: read
SELECT * FROM t /* ; DELETE FROM t; */ WHERE a = 1
-- route: replica | kind: read
SELECT 'it''s; DELETE' FROM t
-- route: replica | kind: read
SELECT 'back\'slash; DROP TABLE t' FROM t
-- route: replica | kind: read
SELECT 1--1
-- route: replica | kind: read
/* leading comment */ SELECT 1
-- route: replica | kind: read
SELECT /*+ MAX_EXECUTION_TIME(1000) */ * FROM t
-- route: primary | kind: read | flags: locking
SELECT * FROM t /*!50000 FOR UPDATE */
-- route: replica | kind: read
SELECT * FROM t WHERE note = '/* switchyard:route=primary */'
-- route: replica | kind: read | flags: hint=primary
/* switchyard:route=primary */ SELECT * FROM t
-- route: replica | kind: read | flags: hint=replica
SELECT /* switchyard:route=replica */ * FROM reports WHERE day = CURDATE()
-- route: replica | kind: read | flags: hint=primary
SELECT * FROM t -- switchyard:route=primary
-- route: primary | kind: write | flags: hint=replica
/* switchyard:route=replica */ UPDATE t SET a = 1
-- route: primary | kind: read | flags: hint=replica locking
/* switchyard:route=replica */ SELECT * FROM accounts WHERE id = 1 FOR UPDATE
-- route: replica | kind: read | flags: hint=replica
/* switchyard: route=replica */ SELECT 1
-- route: replica | kind: read
SELECT `select` FROM `from` WHERE `where` = 'where'
-- route: replica | kind: read
SELECT * FROM t WHERE name LIKE '%;%'
-- route: replica | kind: read
SELECT "--" AS dashes, '#' AS hash FROM t
-- route: replica | kind: read
SELECT * FROM t WHERE a = "double \" quote; DELETE"
-- route: replica | kind: read
SeLeCt * FrOm t WhErE Id = 1
-- route: replica | kind: read
  
	SELECT 1  
-- route: replica | kind: read
SELECT 1;
-- route: replica | kind: read
(SELECT 1)
-- route: replica | kind: read
((SELECT a FROM t) UNION (SELECT b FROM u)) ORDER BY 1
-- route: replica | kind: read
SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE x = 'INSERT')
-- route: replica | kind: read
SELECT 'a' 'b' 'c'
-- route: replica | kind: read
SELECT X'4D7953514C', B'0101', 0x1F, _utf8mb4'text' COLLATE utf8mb4_bin
-- route: replica | kind: read
SELECT `weird``name` FROM t
-- route: replica | kind: read
SELECT * FROM t WHERE doc->>'$.a' = 1
-- route: replica | kind: read
SELECT N'unicode'
-- route: replica | kind: read
SELECT * FROM t WHERE c = '日本語 DELETE'
-- route: primary | kind: read | flags: unparsed
SELECT 1 /* unterminated comment
-- route: primary | kind: read | flags: unparsed
SELECT 'unterminated string
-- route: replica | kind: read
SELECT * FROM t WHERE a = @@session.sql_mode
-- route: replica | kind: read
SELECT * FROM `t` WHERE `a` = '' OR '1'='1' -- '
-- route: replica | kind: read
select/**/id/**/from/**/t
-- route: primary | kind: other

-- route: primary | kind: other
-- only a comment
-- route: primary | kind: other
;

--- Multi-statement strings
-- route: replica | kind: read | flags: multi
SELECT 1; SELECT 2
-- route: primary | kind: write | flags: multi not_only_reads
SELECT * FROM a; UPDATE b SET c = 1
-- route: primary | kind: set | flags: multi sets_user_var reads_user_var not_only_reads
SET @a = 1; SELECT @a
-- route: primary | kind: write | flags: multi ends_tx not_only_reads
START TRANSACTION; UPDATE accounts SET balance = balance - 10 WHERE id = 1; UPDATE accounts SET balance = balance + 10 WHERE id = 2; COMMIT
-- route: primary | kind: begin | flags: multi ends_tx starts_tx not_only_reads
BEGIN; SELECT * FROM t
-- route: primary | kind: set | flags: multi autocommit=0 not_only_reads
SET autocommit=0; SELECT 1
-- route: replica | kind: show | flags: multi
SHOW TABLES; SHOW DATABASES
-- route: primary | kind: ddl | flags: multi ends_tx not_only_reads
DROP TABLE IF EXISTS t; CREATE TABLE t (a INT)
-- route: primary | kind: write | flags: unparsed multi not_only_reads
SELECT 1; INSERT INTO t VALUES (1) RETURNING id
-- route: primary | kind: ddl | flags: multi creates_temp_table not_only_reads
CREATE TEMPORARY TABLE tmp (id INT); INSERT INTO tmp SELECT id FROM t; SELECT * FROM tmp
-- route: primary | kind: write | flags: multi ends_tx not_only_reads
LOCK TABLES t WRITE; INSERT INTO t VALUES (1); UNLOCK TABLES
-- route: primary | kind: commit | flags: multi ends_tx starts_tx not_only_reads
COMMIT; BEGIN
-- route: replica | kind: begin_read_only | flags: multi ends_tx not_only_reads
START TRANSACTION READ ONLY; SELECT * FROM t; COMMIT
-- route: replica | kind: read | flags: multi
SELECT 'a;b'; SELECT "c;d"
-- route: primary | kind: read | flags: unparsed multi
SELECT 1; SET STATEMENT max_statement_time=1 FOR SELECT 2
-- route: primary | kind: use | flags: multi not_only_reads schema=shop
USE shop; SELECT * FROM users
-- route: primary | kind: admin | flags: ends_tx affects_new_logins
SET PASSWORD FOR 'a'@'%' = PASSWORD('x')
-- route: primary | kind: admin | flags: ends_tx affects_new_logins
DROP ROLE r
-- route: primary | kind: ddl | flags: unparsed ends_tx affects_new_logins
CREATE OR REPLACE USER u IDENTIFIED BY 'p'
-- route: primary | kind: read | flags: multi ends_tx not_only_reads affects_new_logins
SELECT 1; GRANT SELECT ON *.* TO u
-- route: primary | kind: admin | flags: ends_tx affects_new_logins
FLUSH LOCAL PRIVILEGES
-- route: primary | kind: set | flags: unparsed affects_new_logins
SET DEFAULT ROLE r FOR u
-- route: primary | kind: ddl | flags: ends_tx
CREATE TABLE user (a INT)
-- route: primary | kind: set | flags: sets_user_var
SET @user = 'GRANT'
-- route: primary | kind: admin | flags: affects_new_logins
SET GLOBAL sql_mode = ''
-- route: primary | kind: admin | flags: affects_new_logins
SET @@global.max_connections = 10
-- route: primary | kind: set
SET sql_mode = 'global'
