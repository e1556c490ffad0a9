/* Figures shown to operators in reasons. */
#include "errors.hpp"
#include "text.hpp"

#include <gtest/gtest.h>

#include <new>
#include <stdexcept>
#include <string>

using namespace replroute;

TEST(Text, Bytes)
{
	EXPECT_STREQ(format_bytes(0).text, "0 bytes");
	EXPECT_STREQ(format_bytes(1).text, "1 byte");
	EXPECT_STREQ(format_bytes(1023).text, "1023 bytes");
	EXPECT_STREQ(format_bytes(1024).text, "1 kB");
	EXPECT_STREQ(format_bytes(12 * 1024).text, "12 kB");
	EXPECT_STREQ(format_bytes(16 * 1024 * 1024).text, "16 MB");
	EXPECT_STREQ(format_bytes(static_cast<int64_t>(1.3 * 1024 * 1024 * 1024)).text, "1.3 GB");
	EXPECT_STREQ(format_bytes(-1).text, "unknown");
}

TEST(Text, Durations)
{
	EXPECT_STREQ(format_duration(0).text, "0 us");
	EXPECT_STREQ(format_duration(800).text, "800 us");
	EXPECT_STREQ(format_duration(2500).text, "2.5 ms");
	EXPECT_STREQ(format_duration(1000000).text, "1 s");
	EXPECT_STREQ(format_duration(3200000).text, "3.2 s");
	EXPECT_STREQ(format_duration(90 * 1000000LL).text, "1.5 min");
	EXPECT_STREQ(format_duration(7200 * 1000000LL).text, "2 h");
}

TEST(Text, ActualNeverPrintsLikeTheLimitItExceeds)
{
	EXPECT_STREQ(format_duration_against(1000001, 1000000).text, "1000001 us");
	EXPECT_STREQ(format_duration_against(1040000, 1000000).text, "1.04 s");
	EXPECT_STREQ(format_bytes_against(16 * 1024 * 1024 + 1, 16 * 1024 * 1024).text,
	             "16777217 bytes");
	EXPECT_STREQ(format_bytes_against(2 * 16 * 1024 * 1024, 16 * 1024 * 1024).text, "32 MB");
}

TEST(Text, PrintablePrefix)
{
	EXPECT_STREQ(printable_prefix("abc").text, "abc");
	EXPECT_STREQ(printable_prefix("a\nb\x01").text, "a?b?");
	EXPECT_STREQ(printable_prefix(std::string(100, 'q').c_str(), 4).text, "qqqq...");
	EXPECT_STREQ(printable_prefix(nullptr).text, "");
}

TEST(Text, CopyTextTerminatesAndTruncates)
{
	char dst[4];
	const char src[6] = {'a', 'b', 'c', 'd', 'e', 'f'}; /* no NUL */
	copy_text(dst, sizeof dst, src, sizeof src);
	EXPECT_STREQ(dst, "abc");
}

TEST(Guarded, TurnsEveryExceptionIntoInternalError)
{
	rr_error error{};
	EXPECT_EQ(guarded(&error, "f", []() -> rr_status { throw std::bad_alloc(); }), RR_ERR_INTERNAL);
	EXPECT_EQ(error.status, RR_ERR_INTERNAL);
	EXPECT_STREQ(error.message, "f: out of memory");
	EXPECT_EQ(guarded(&error, "g", []() -> rr_status { throw std::runtime_error("boom"); }),
	          RR_ERR_INTERNAL);
	EXPECT_STREQ(error.message, "g: internal error: boom");
	EXPECT_EQ(guarded(&error, "h", []() -> rr_status { throw 42; }), RR_ERR_INTERNAL);
	EXPECT_STREQ(error.message, "h: internal error: unknown exception");
	EXPECT_EQ(guarded(nullptr, "i", []() -> rr_status { throw 42; }), RR_ERR_INTERNAL);
	EXPECT_EQ(guarded(&error, "j", [] { return RR_OK; }), RR_OK);
	EXPECT_STREQ(error.message, "");
	EXPECT_EQ(guarded(&error, "k", [] { return RR_ERR_INVALID; }), RR_ERR_INVALID);
	EXPECT_STREQ(error.message, "k failed");
}
