/*
 * probe.cpp -- ProbeMachine; see probe.hpp for the states and the pacing.
 */
#include "probe.hpp"

#include <atomic>

#include "text.hpp"

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace replroute
{

namespace
{

int64_t backoff_cap(const rr_probe_settings &settings) noexcept
{
	return std::max(kBackoffCapUs, settings.interval_us);
}

} // namespace

void probe_failure_reason(char (&reason)[RR_REASON_LEN], const char *message) noexcept
{
	constexpr const char prefix[] = "probe failed: ";
	constexpr size_t kPrefix = sizeof prefix - 1;
	std::memcpy(reason, prefix, kPrefix);
	size_t room = sizeof reason - kPrefix - 1;
	size_t n = 0;
	bool cut = false;
	if (message == nullptr || message[0] == '\0')
		message = "no message";
	for (; message[n] != '\0' && message[n] != '\n' && message[n] != '\r'; ++n)
		if (n == room)
		{
			cut = true;
			break;
		}
	/* Control characters would make the reason unreadable in a log line. */
	for (size_t i = 0; i < n; ++i)
	{
		unsigned char c = static_cast<unsigned char>(message[i]);
		reason[kPrefix + i] = c < 0x20 || c == 0x7f ? '?' : static_cast<char>(c);
	}
	reason[kPrefix + n] = '\0';
	if (cut)
		std::memcpy(reason + sizeof reason - 4, "...", 4);
}

void ProbeMachine::fail(rr_timestamp now, const rr_probe_settings *settings, const char *format,
                        ...) noexcept
{
	va_list args;
	va_start(args, format);
	std::vsnprintf(reason_, sizeof reason_, format, args);
	va_end(args);
	reason_written();

	int64_t interval = settings != nullptr ? settings->interval_us : last_interval_us_;
	if (interval <= 0)
		interval = 1;
	rr_probe_settings bounds{interval, 0};
	backoff_us_ = backoff_us_ == 0 ? interval : std::min(backoff_us_ * 2, backoff_cap(bounds));
	state_ = RR_PROBE_BACKOFF;
	outcome_ = RR_PROBE_FAILED;
	retry_at_ = now + backoff_us_;
}

rr_probe_action ProbeMachine::poll(rr_timestamp now, const rr_probe_settings &settings) noexcept
{
	last_interval_us_ = settings.interval_us;
	switch (state_)
	{
	case RR_PROBE_IDLE:
		state_ = RR_PROBE_CONNECTING;
		phase_started_ = now;
		return RR_PROBE_DO_CONNECT;
	case RR_PROBE_CONNECTING:
		if (now - phase_started_ < settings.timeout_us)
			return RR_PROBE_DO_NOTHING;
		fail(now, &settings, "probe timed out after %s while connecting",
		     format_duration(settings.timeout_us).text);
		return RR_PROBE_DO_DROP;
	case RR_PROBE_QUERYING:
		if (now - phase_started_ < settings.timeout_us)
			return RR_PROBE_DO_NOTHING;
		fail(now, &settings, "probe timed out after %s", format_duration(settings.timeout_us).text);
		return RR_PROBE_DO_DROP;
	case RR_PROBE_OK:
		if (next_query_ != RR_NO_TIME && now < next_query_)
			return RR_PROBE_DO_NOTHING;
		state_ = RR_PROBE_QUERYING;
		phase_started_ = now;
		return RR_PROBE_DO_SEND;
	case RR_PROBE_BACKOFF:
		if (now < retry_at_)
			return RR_PROBE_DO_NOTHING;
		state_ = RR_PROBE_CONNECTING;
		phase_started_ = now;
		return RR_PROBE_DO_CONNECT;
	default:
		return RR_PROBE_DO_NOTHING;
	}
}

rr_timestamp ProbeMachine::next_deadline(const rr_probe_settings &settings) const noexcept
{
	switch (state_)
	{
	case RR_PROBE_CONNECTING:
	case RR_PROBE_QUERYING:
		return phase_started_ + settings.timeout_us;
	case RR_PROBE_OK:
		return next_query_;
	case RR_PROBE_BACKOFF:
		return retry_at_;
	default:
		return RR_NO_TIME;
	}
}

void ProbeMachine::on_connected(rr_timestamp) noexcept
{
	if (state_ != RR_PROBE_CONNECTING)
		return;
	state_ = RR_PROBE_OK;
	next_query_ = RR_NO_TIME; /* ask at once: a new connection has nothing to vouch with */
}

void ProbeMachine::on_answer(rr_timestamp now, bool in_recovery, rr_lsn replay_lsn) noexcept
{
	if (state_ != RR_PROBE_QUERYING)
		return;
	state_ = RR_PROBE_OK;
	outcome_ = RR_PROBE_ANSWERED;
	in_recovery_ = in_recovery;
	replay_lsn_ = replay_lsn;
	answered_at_ = now;
	backoff_us_ = 0;
	reason_[0] = '\0';
	reason_written();
	next_query_ = phase_started_ + last_interval_us_;
}

void ProbeMachine::on_failure(rr_timestamp now, const char *message) noexcept
{
	if (state_ != RR_PROBE_CONNECTING && state_ != RR_PROBE_QUERYING && state_ != RR_PROBE_OK)
		return;
	fail(now, nullptr, "%s", "");
	probe_failure_reason(reason_, message);
	reason_written();
}

/* Serials are unique in the process (every probe target of the worker), so
 * equal serials mean the same write of the same text, whichever target an
 * observation came from. */
void ProbeMachine::reason_written() noexcept
{
	static std::atomic<uint64_t> last_serial{0};
	reason_serial_ = last_serial.fetch_add(1, std::memory_order_relaxed) + 1;
}

rr_probe_obs ProbeMachine::observe(rr_timestamp now,
                                   const rr_probe_settings &settings) const noexcept
{
	rr_probe_obs obs{};
	obs.state = state_;
	obs.outcome = outcome_;
	obs.answered_at = answered_at_;
	if (answered_at_ != RR_NO_TIME)
	{
		obs.in_recovery = in_recovery_;
		obs.replay_lsn = replay_lsn_;
	}
	/* An answer vouches for a replay position only while no newer exchange
	 * has failed and the next one is not overdue: a standby rebuilt from an
	 * older backup behind the same port would otherwise lend its predecessor's
	 * position. */
	obs.replay_lsn_fresh = outcome_ == RR_PROBE_ANSWERED && replay_lsn_ != 0 &&
	                       now - answered_at_ <= settings.interval_us + settings.timeout_us;
	if (outcome_ == RR_PROBE_FAILED)
	{
		copy_field(obs.reason, reason_);
		obs.reason_serial = reason_serial_;
	}
	return obs;
}

} // namespace replroute
