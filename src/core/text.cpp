/*
 * text.cpp -- bounded copies and operator-facing figures.
 */
#include "text.hpp"

#include <cinttypes>
#include <cstdio>

namespace replroute
{

void copy_text(char *dst, size_t dst_size, const char *src, size_t src_size) noexcept
{
	if (dst_size == 0)
		return;
	size_t n = src == nullptr ? 0 : strnlen(src, src_size);
	if (n > dst_size - 1)
		n = dst_size - 1;
	if (n > 0)
		std::memcpy(dst, src, n);
	std::memset(dst + n, 0, dst_size - n);
}

namespace
{

/* One decimal, without a trailing ".0", so that limits read as the operator
 * wrote them ("16 MB", "1 s") and measurements keep a useful digit. */
void format_scaled(ShortText &out, double value, const char *unit, int decimals)
{
	char number[32];
	std::snprintf(number, sizeof number, "%.*f", decimals, value);
	if (decimals > 0)
	{
		size_t len = std::strlen(number);
		while (len > 0 && number[len - 1] == '0')
			number[--len] = '\0';
		if (len > 0 && number[len - 1] == '.')
			number[--len] = '\0';
	}
	std::snprintf(out.text, sizeof out.text, "%s %s", number, unit);
}

ShortText bytes_with(int64_t bytes, int decimals)
{
	ShortText out{};
	if (bytes < 0)
	{
		std::snprintf(out.text, sizeof out.text, "unknown");
		return out;
	}
	if (bytes < 1024)
	{
		std::snprintf(out.text, sizeof out.text, "%" PRId64 " %s", bytes,
		              bytes == 1 ? "byte" : "bytes");
		return out;
	}
	static const char *const units[] = {"kB", "MB", "GB", "TB", "PB", "EB"};
	double value = static_cast<double>(bytes) / 1024.0;
	size_t unit = 0;
	while (value >= 1024.0 && unit + 1 < sizeof units / sizeof units[0])
	{
		value /= 1024.0;
		++unit;
	}
	format_scaled(out, value, units[unit],
	              value < 10.0       ? decimals
	              : decimals - 1 < 0 ? 0
	                                 : decimals - 1);
	return out;
}

ShortText duration_with(int64_t us, int decimals)
{
	ShortText out{};
	if (us < 0)
	{
		std::snprintf(out.text, sizeof out.text, "unknown");
		return out;
	}
	if (us < 1000)
	{
		std::snprintf(out.text, sizeof out.text, "%" PRId64 " us", us);
		return out;
	}
	double value = static_cast<double>(us);
	if (us < 1000000)
		format_scaled(out, value / 1e3, "ms", decimals);
	else if (us < 60 * INT64_C(1000000))
		format_scaled(out, value / 1e6, "s", decimals);
	else if (us < 3600 * INT64_C(1000000))
		format_scaled(out, value / 60e6, "min", decimals);
	else
		format_scaled(out, value / 3600e6, "h", decimals);
	return out;
}

} // namespace

ShortText format_bytes(int64_t bytes) noexcept
{
	return bytes_with(bytes, 1);
}

ShortText format_duration(int64_t microseconds) noexcept
{
	return duration_with(microseconds, 1);
}

ShortText format_bytes_against(int64_t actual, int64_t limit) noexcept
{
	ShortText shown = bytes_with(actual, 1);
	if (actual > limit && std::strcmp(shown.text, bytes_with(limit, 1).text) == 0)
	{
		shown = bytes_with(actual, 3);
		if (std::strcmp(shown.text, bytes_with(limit, 3).text) == 0)
			std::snprintf(shown.text, sizeof shown.text, "%" PRId64 " bytes", actual);
	}
	return shown;
}

ShortText format_duration_against(int64_t actual, int64_t limit) noexcept
{
	ShortText shown = duration_with(actual, 1);
	if (actual > limit && std::strcmp(shown.text, duration_with(limit, 1).text) == 0)
	{
		shown = duration_with(actual, 3);
		if (std::strcmp(shown.text, duration_with(limit, 3).text) == 0)
			std::snprintf(shown.text, sizeof shown.text, "%" PRId64 " us", actual);
	}
	return shown;
}

ShortText printable_prefix(const char *text, size_t max_bytes) noexcept
{
	ShortText out{};
	if (text == nullptr)
		return out;
	size_t limit = max_bytes < sizeof out.text - 4 ? max_bytes : sizeof out.text - 4;
	size_t i = 0;
	for (; i < limit && text[i] != '\0'; ++i)
	{
		unsigned char c = static_cast<unsigned char>(text[i]);
		out.text[i] = (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
	}
	if (text[i] != '\0')
		std::memcpy(out.text + i, "...", 4);
	else
		out.text[i] = '\0';
	return out;
}

} // namespace replroute
