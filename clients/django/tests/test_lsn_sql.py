import unittest

from . import fakes  # noqa: F401  (configures Django)
from replroute_django.lsn import format_lsn, lsn_max, parse_lsn
from replroute_django.sql import is_read, is_write


class LsnTests(unittest.TestCase):
    def test_parse_and_format_round_trip(self):
        for text in ("0/0", "0/3000148", "16/B374D848", "FFFFFFFF/FFFFFFFF"):
            self.assertEqual(format_lsn(parse_lsn(text)), text)

    def test_compares_numerically_not_as_text(self):
        # As strings '9/0' > '10/0'; as positions it is the other way round.
        self.assertLess(parse_lsn("9/0"), parse_lsn("10/0"))
        self.assertLess(parse_lsn("0/FFFFFFFF"), parse_lsn("1/0"))
        self.assertLess(parse_lsn("0/9"), parse_lsn("0/10"))

    def test_high_half_is_shifted(self):
        self.assertEqual(parse_lsn("1/0"), 1 << 32)
        self.assertEqual(parse_lsn("0/1a"), 26)

    def test_none_and_empty(self):
        self.assertIsNone(parse_lsn(None))
        self.assertIsNone(parse_lsn(""))
        self.assertIsNone(format_lsn(None))

    def test_malformed_is_rejected(self):
        for bad in ("1", "/1", "1/", "-1/0", "g/0", "1/2/3", "123456789/0", " / ", "0x1/0"):
            with self.assertRaises(ValueError, msg=bad):
                parse_lsn(bad)

    def test_int_passes_through_in_range(self):
        self.assertEqual(parse_lsn(5), 5)
        with self.assertRaises(ValueError):
            parse_lsn(-1)
        with self.assertRaises(ValueError):
            parse_lsn(1 << 64)

    def test_lsn_max(self):
        self.assertEqual(lsn_max(None, 3), 3)
        self.assertEqual(lsn_max(4, None), 4)
        self.assertEqual(lsn_max(4, 9), 9)
        self.assertIsNone(lsn_max(None, None))


class WriteDetectionTests(unittest.TestCase):
    def test_orm_writes(self):
        for sql in (
            'INSERT INTO "shop_item" ("name") VALUES (%s) RETURNING "shop_item"."id"',
            'UPDATE "shop_item" SET "count" = ("shop_item"."count" + %s)',
            'DELETE FROM "shop_item" WHERE "shop_item"."id" IN (%s)',
            "  \n insert into t values (1)",
            "CREATE TABLE t (a int)",
            "TRUNCATE t",
            "COPY t FROM STDIN",
            "CALL proc()",
            "DO $$ BEGIN END $$",
            "MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE",
        ):
            self.assertTrue(is_write(sql), sql)

    def test_reads_and_transaction_control(self):
        for sql in (
            'SELECT "shop_item"."id" FROM "shop_item" WHERE "shop_item"."name" = %s',
            "(SELECT 1) UNION (SELECT 2)",
            "SAVEPOINT \"s140_x1\"",
            "RELEASE SAVEPOINT \"s140_x1\"",
            "ROLLBACK TO SAVEPOINT \"s140_x1\"",
            "SET TIME ZONE 'UTC'",
            "SHOW server_version",
            "SELECT * FROM t FOR UPDATE",
            "WITH a AS (SELECT 1) SELECT * FROM a",
            "EXPLAIN SELECT 1",
            "",
        ):
            self.assertFalse(is_write(sql), sql)

    def test_words_in_literals_and_comments_do_not_count(self):
        self.assertFalse(is_write("SELECT 'insert into x' FROM t -- update\n"))
        self.assertFalse(is_write('SELECT "delete" FROM t /* insert */'))
        self.assertFalse(is_write("WITH a AS (SELECT 'update') SELECT * FROM a"))
        self.assertFalse(is_write("SELECT $tag$ insert into $tag$"))

    def test_comment_before_a_write(self):
        self.assertTrue(is_write("/* from view X */ UPDATE t SET a = 1"))
        self.assertTrue(is_write("-- note\nDELETE FROM t"))

    def test_hidden_writes(self):
        self.assertTrue(is_write("WITH moved AS (DELETE FROM a RETURNING *) INSERT INTO b SELECT * FROM moved"))
        self.assertTrue(is_write("WITH x AS (UPDATE t SET a = 1 RETURNING a) SELECT * FROM x"))
        self.assertTrue(is_write("SELECT * INTO new_table FROM t"))
        self.assertTrue(is_write("EXPLAIN ANALYZE INSERT INTO t VALUES (1)"))

    def test_bytes_and_unknown_types(self):
        self.assertTrue(is_write(b"INSERT INTO t VALUES (1)"))
        self.assertFalse(is_write(b"SELECT 1"))

    def test_is_read_only_for_plain_queries(self):
        self.assertTrue(is_read("SELECT 1"))
        self.assertTrue(is_read("WITH a AS (SELECT 1) SELECT * FROM a"))
        self.assertFalse(is_read("INSERT INTO t VALUES (1)"))
        self.assertFalse(is_read("SET x = 1"))
        self.assertFalse(is_read("SELECT * INTO t2 FROM t"))
        self.assertFalse(is_read(object()))


if __name__ == "__main__":
    unittest.main()
