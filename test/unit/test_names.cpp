/* Enum names are part of the SQL contract; parsing follows PostgreSQL's words. */
#include "replroute/replroute.h"

#include <gtest/gtest.h>

#include <string>

TEST(Names, EveryNodeStateHasItsSqlWord)
{
	const char *expected[] = {"unknown",      "healthy", "lagging",      "catchup",
	                          "disconnected", "stalled", "unreachable",  "not_in_recovery",
	                          "slot_lost",    "drained", "unregistered", "recovering"};
	ASSERT_EQ(sizeof expected / sizeof expected[0], static_cast<size_t>(RR_STATE_COUNT_));
	for (int i = 0; i < RR_STATE_COUNT_; ++i)
		EXPECT_STREQ(rr_state_name(static_cast<rr_node_state>(i)), expected[i]) << i;
}

TEST(Names, OutOfRangeValuesAreInvalidNotNull)
{
	EXPECT_STREQ(rr_state_name(RR_STATE_COUNT_), "invalid");
	EXPECT_STREQ(rr_state_name(static_cast<rr_node_state>(-1)), "invalid");
	EXPECT_STREQ(rr_walsender_state_name(RR_WS_COUNT_), "invalid");
	EXPECT_STREQ(rr_walsender_state_name(static_cast<rr_walsender_state>(-7)), "invalid");
	EXPECT_STREQ(rr_wal_status_name(RR_WAL_COUNT_), "invalid");
	EXPECT_STREQ(rr_wal_status_name(static_cast<rr_wal_status>(99)), "invalid");
}

TEST(Names, WalsenderStatesRoundTrip)
{
	for (int i = RR_WS_STARTUP; i < RR_WS_COUNT_; ++i)
	{
		auto state = static_cast<rr_walsender_state>(i);
		EXPECT_EQ(rr_parse_walsender_state(rr_walsender_state_name(state)), state);
	}
	EXPECT_STREQ(rr_walsender_state_name(RR_WS_NONE), "none");
	EXPECT_STREQ(rr_walsender_state_name(RR_WS_STREAMING), "streaming");
}

TEST(Names, WalStatusesRoundTrip)
{
	for (int i = RR_WAL_RESERVED; i < RR_WAL_COUNT_; ++i)
	{
		auto status = static_cast<rr_wal_status>(i);
		EXPECT_EQ(rr_parse_wal_status(rr_wal_status_name(status)), status);
	}
	EXPECT_STREQ(rr_wal_status_name(RR_WAL_LOST), "lost");
	EXPECT_STREQ(rr_wal_status_name(RR_WAL_UNRESERVED), "unreserved");
}

TEST(Names, NullOrUnknownTextParsesAsNone)
{
	EXPECT_EQ(rr_parse_walsender_state(nullptr), RR_WS_NONE);
	EXPECT_EQ(rr_parse_walsender_state(""), RR_WS_NONE);
	EXPECT_EQ(rr_parse_walsender_state("Streaming"), RR_WS_NONE);
	EXPECT_EQ(rr_parse_walsender_state("none"), RR_WS_NONE);
	EXPECT_EQ(rr_parse_walsender_state("streaming "), RR_WS_NONE);
	EXPECT_EQ(rr_parse_wal_status(nullptr), RR_WAL_NONE);
	EXPECT_EQ(rr_parse_wal_status("LOST"), RR_WAL_NONE);
	EXPECT_EQ(rr_parse_wal_status("none"), RR_WAL_NONE);
}
