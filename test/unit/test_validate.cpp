/* Registry input validation: every class of bad input, and messages that say
 * what is allowed without echoing hostile input whole. */
#include "replroute/replroute.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace
{

struct Outcome
{
	rr_status status;
	std::string message;
};

Outcome name(const char *text)
{
	rr_error error{};
	rr_status status = rr_validate_node_name(text, &error);
	EXPECT_EQ(error.status, status);
	return {status, error.message};
}

Outcome host(const char *text)
{
	rr_error error{};
	rr_status status = rr_validate_host(text, &error);
	EXPECT_EQ(error.status, status);
	return {status, error.message};
}

Outcome app(const char *text)
{
	rr_error error{};
	rr_status status = rr_validate_application_name(text, &error);
	return {status, error.message};
}

bool contains(const std::string &haystack, const std::string &needle)
{
	return haystack.find(needle) != std::string::npos;
}

} // namespace

TEST(ValidateNodeName, AcceptsLettersDigitsAndPunctuationInside)
{
	for (const char *ok : {"a", "node1", "Node_2", "n.3", "n-4", "1st", "db-eu.west_1"})
		EXPECT_EQ(name(ok).status, RR_OK) << ok;
	EXPECT_EQ(name(std::string(63, 'x').c_str()).status, RR_OK);
}

TEST(ValidateNodeName, SuccessClearsTheMessage)
{
	rr_error error{RR_ERR_INTERNAL, "stale message"};
	EXPECT_EQ(rr_validate_node_name("ok", &error), RR_OK);
	EXPECT_EQ(error.status, RR_OK);
	EXPECT_STREQ(error.message, "");
}

TEST(ValidateNodeName, NullEmptyAndTooLong)
{
	EXPECT_EQ(name(nullptr).status, RR_ERR_NULL);
	Outcome empty = name("");
	EXPECT_EQ(empty.status, RR_ERR_INVALID);
	EXPECT_TRUE(contains(empty.message, "empty")) << empty.message;
	Outcome longer = name(std::string(64, 'x').c_str());
	EXPECT_EQ(longer.status, RR_ERR_TOO_LONG);
	EXPECT_TRUE(contains(longer.message, "63")) << longer.message;
}

TEST(ValidateNodeName, RefusesEveryCharacterOutsideTheSet)
{
	for (const char *bad :
	     {"a b", "a'b", "a\"b", "a=b", "a\\b", "a\tb", "a\nb", "a\x7f", "a/b", "a;b", "a,b",
	      "caf\xc3\xa9", "_lead", "-lead", ".lead", "host=x password=y"})
	{
		Outcome o = name(bad);
		EXPECT_EQ(o.status, RR_ERR_INVALID) << bad;
		EXPECT_TRUE(contains(o.message, "letters, digits")) << o.message;
	}
}

TEST(ValidateNodeName, MessageNamesTheOffendingCharacter)
{
	EXPECT_TRUE(contains(name("ab c").message, "a space at byte 3")) << name("ab c").message;
	EXPECT_TRUE(contains(name("ab=c").message, "'=' at byte 3")) << name("ab=c").message;
	EXPECT_TRUE(contains(name("ab\x01").message, "byte 0x01")) << name("ab\x01").message;
	/* Control characters are never echoed raw. */
	EXPECT_EQ(name("ab\x01").message.find('\x01'), std::string::npos);
}

TEST(ValidateNodeName, HostileLongInputIsEchoedOnlyAsAPrefix)
{
	/* Too long is found before the bad characters, and costs no full scan. */
	std::string hostile = "x y" + std::string(100000, 'z');
	Outcome o = name(hostile.c_str());
	EXPECT_EQ(o.status, RR_ERR_TOO_LONG);
	EXPECT_LT(o.message.size(), static_cast<size_t>(RR_ERROR_LEN));
	EXPECT_FALSE(contains(o.message, std::string(40, 'z'))) << o.message;
	EXPECT_TRUE(contains(o.message, "...")) << o.message;

	std::string within = std::string(50, 'q') + "'";
	Outcome bad = name(within.c_str());
	EXPECT_EQ(bad.status, RR_ERR_INVALID);
	EXPECT_TRUE(contains(bad.message, "''' at byte 51")) << bad.message;
	EXPECT_FALSE(contains(bad.message, std::string(40, 'q'))) << bad.message;
}

TEST(ValidateHost, AcceptsNamesAddressesAndSocketDirectories)
{
	for (const char *ok : {"db1", "db1.example.com", "localhost", "10.0.0.7", "::1", "2001:db8::17",
	                       "fe80::1%eth0", "/var/run/postgresql", "/tmp", "/home/pg/sockets/x-1"})
		EXPECT_EQ(host(ok).status, RR_OK) << ok;
	EXPECT_EQ(host(std::string(255, 'h').c_str()).status, RR_OK);
}

TEST(ValidateHost, NullEmptyAndTooLong)
{
	EXPECT_EQ(host(nullptr).status, RR_ERR_NULL);
	EXPECT_EQ(host("").status, RR_ERR_INVALID);
	EXPECT_EQ(host(std::string(256, 'h').c_str()).status, RR_ERR_TOO_LONG);
}

TEST(ValidateHost, RefusesConninfoSmuggling)
{
	for (const char *bad : {"host=x password=y",
	                        "db1 password=y",
	                        "db1'",
	                        "'db1'",
	                        "db1\"",
	                        "db1=2",
	                        "db\\1",
	                        "db1\n",
	                        "db1\r",
	                        "db\t1",
	                        "db1\x7f",
	                        "a,b",
	                        "/tmp/with space",
	                        "/tmp/a'b",
	                        "/tmp/a=b",
	                        "/tmp\\x",
	                        "-oProxyCommand",
	                        "tmp/sock",
	                        "db1;drop",
	                        "d\xc3\xa9"})
	{
		Outcome o = host(bad);
		EXPECT_EQ(o.status, RR_ERR_INVALID) << bad;
		EXPECT_TRUE(contains(o.message, "host name, an IPv4 or IPv6 address")) << o.message;
	}
	EXPECT_TRUE(contains(host("host=x password=y").message, "'=' at byte 5"))
	    << host("host=x password=y").message;
}

TEST(ValidatePort, Range)
{
	rr_error error{};
	EXPECT_EQ(rr_validate_port(1, &error), RR_OK);
	EXPECT_EQ(rr_validate_port(5432, &error), RR_OK);
	EXPECT_EQ(rr_validate_port(65535, &error), RR_OK);
	for (int32_t bad : {0, -1, 65536, INT32_MIN, INT32_MAX})
	{
		EXPECT_EQ(rr_validate_port(bad, &error), RR_ERR_INVALID) << bad;
		EXPECT_TRUE(contains(error.message, "1 to 65535")) << error.message;
	}
}

TEST(ValidateWeight, Range)
{
	rr_error error{};
	EXPECT_EQ(rr_validate_weight(0, &error), RR_OK);
	EXPECT_EQ(rr_validate_weight(100, &error), RR_OK);
	EXPECT_EQ(rr_validate_weight(RR_MAX_WEIGHT, &error), RR_OK);
	for (int32_t bad : {-1, RR_MAX_WEIGHT + 1, INT32_MIN})
	{
		EXPECT_EQ(rr_validate_weight(bad, &error), RR_ERR_INVALID) << bad;
		EXPECT_TRUE(contains(error.message, "0 (never picked) to 1000000")) << error.message;
	}
}

TEST(ValidateApplicationName, PrintableAsciiWithoutQuotesOrBackslashes)
{
	for (const char *ok : {"node1", "my standby", "walreceiver", "a=b", "x;y", "pg_basebackup"})
		EXPECT_EQ(app(ok).status, RR_OK) << ok;
	EXPECT_EQ(app(std::string(63, 'a').c_str()).status, RR_OK);
	EXPECT_EQ(app(nullptr).status, RR_ERR_NULL);
	EXPECT_EQ(app("").status, RR_ERR_INVALID);
	EXPECT_EQ(app(std::string(64, 'a').c_str()).status, RR_ERR_TOO_LONG);
	for (const char *bad : {"a'b", "a\"b", "a\\b", "a\nb", "a\x1b[31m", "\xc3\xa9t\xc3\xa9"})
	{
		Outcome o = app(bad);
		EXPECT_EQ(o.status, RR_ERR_INVALID) << bad;
		EXPECT_TRUE(contains(o.message, "printable ASCII")) << o.message;
	}
}

TEST(Validate, NullErrorPointerIsAllowed)
{
	EXPECT_EQ(rr_validate_node_name("a b", nullptr), RR_ERR_INVALID);
	EXPECT_EQ(rr_validate_host(nullptr, nullptr), RR_ERR_NULL);
	EXPECT_EQ(rr_validate_port(0, nullptr), RR_ERR_INVALID);
}
