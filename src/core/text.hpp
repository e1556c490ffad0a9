/*
 * text.hpp -- fixed-size text: bounded copies of the C structs' char arrays,
 * and the figures that reasons and error messages show to operators.
 *
 * Every char array that crosses the boundary is treated as possibly
 * unterminated: the shims fill them, and a missing NUL must not make the core
 * read past a field.
 */
#pragma once

#ifdef POSTGRES_H
#error "src/core headers are C++ internals of replroute; never include them next to postgres.h"
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace replroute
{

/* Copies at most src_size bytes (stopping at a NUL) into dst, truncating to
 * dst_size - 1 bytes, and always terminates dst. */
void copy_text(char *dst, size_t dst_size, const char *src, size_t src_size) noexcept;

template <size_t D, size_t S>
void copy_field(char (&dst)[D], const char (&src)[S]) noexcept
{
	copy_text(dst, D, src, S);
}

template <size_t N>
std::string_view field_view(const char (&field)[N]) noexcept
{
	return std::string_view(field, strnlen(field, N));
}

/* Short human-readable text that fits any reason or message. */
struct ShortText
{
	char text[48];
};

/* "0 bytes", "512 bytes", "12 kB", "1.3 GB" (powers of 1024, as pg_size_pretty). */
ShortText format_bytes(int64_t bytes) noexcept;
/* "800 us", "2.5 ms", "3.2 s", "1.5 min", "2 h". */
ShortText format_duration(int64_t microseconds) noexcept;
/* Like the two above, but precise enough that actual and limit never print the
 * same when actual > limit ("1.04 s > 1 s", not "1 s > 1 s"). */
ShortText format_bytes_against(int64_t actual, int64_t limit) noexcept;
ShortText format_duration_against(int64_t actual, int64_t limit) noexcept;

/* At most max_bytes of untrusted input, non-printable bytes shown as '?', with
 * "..." when cut, for error messages that must not echo hostile input whole. */
ShortText printable_prefix(const char *text, size_t max_bytes = 32) noexcept;

} // namespace replroute
