/*
 * validate.cpp -- registry input checks.
 *
 * The host ends up in a libpq conninfo string (the probes of a later release)
 * and in what clients connect to, so it is held to a character set that cannot
 * carry a second keyword: no spaces, quotes, '=', backslashes, commas (libpq
 * would read a host list) or control characters.
 */
#include "validate.hpp"

#include "errors.hpp"
#include "text.hpp"

#include <cstdio>
#include <cstring>

namespace replroute
{

namespace
{

bool is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* "' '" for a printable character, "byte 0x0a" for anything else, so that an
 * operator can see which character was refused even when it is invisible. */
ShortText describe_byte(unsigned char c)
{
	ShortText out{};
	if (c > 0x20 && c < 0x7f)
		std::snprintf(out.text, sizeof out.text, "'%c'", c);
	else if (c == ' ')
		std::snprintf(out.text, sizeof out.text, "a space");
	else
		std::snprintf(out.text, sizeof out.text, "byte 0x%02x", c);
	return out;
}

/* Length of text, but never scanning more than a little past limit, so that
 * an enormous argument costs no more than a short one. */
size_t bounded_length(const char *text, size_t limit)
{
	return strnlen(text, limit + 1);
}

rr_status check_length(const char *what, const char *text, size_t max_len, rr_error *error)
{
	if (text == nullptr)
		return fail(error, RR_ERR_NULL, "%s must not be NULL", what);
	size_t len = bounded_length(text, max_len);
	if (len == 0)
		return fail(error, RR_ERR_INVALID, "%s must not be empty", what);
	if (len > max_len)
		return fail(error, RR_ERR_TOO_LONG, "%s \"%s\" is too long: at most %zu bytes are allowed",
		            what, printable_prefix(text).text, max_len);
	return RR_OK;
}

} // namespace

rr_status validate_node_name(const char *name, rr_error *error) noexcept
{
	rr_status status = check_length("node name", name, RR_NAME_LEN - 1, error);
	if (status != RR_OK)
		return status;
	for (size_t i = 0; name[i] != '\0'; ++i)
	{
		unsigned char c = static_cast<unsigned char>(name[i]);
		bool ok = is_alnum(c) || (i > 0 && (c == '_' || c == '.' || c == '-'));
		if (!ok)
			return fail(error, RR_ERR_INVALID,
			            "node name \"%s\" contains %s at byte %zu: a node name is 1 to %d "
			            "letters, digits, '_', '.' or '-', starting with a letter or digit",
			            printable_prefix(name).text, describe_byte(c).text, i + 1, RR_NAME_LEN - 1);
	}
	return RR_OK;
}

rr_status validate_host(const char *host, rr_error *error) noexcept
{
	rr_status status = check_length("host", host, RR_HOST_LEN - 1, error);
	if (status != RR_OK)
		return status;
	static const char *const allowed =
	    "a host is a host name, an IPv4 or IPv6 address, or an absolute socket directory "
	    "(starting with '/'), without spaces, quotes, '=', ',', backslashes or control characters";
	bool socket_directory = host[0] == '/';
	for (size_t i = 0; host[i] != '\0'; ++i)
	{
		unsigned char c = static_cast<unsigned char>(host[i]);
		bool ok;
		if (c <= 0x20 || c >= 0x7f || c == '\'' || c == '"' || c == '=' || c == '\\' || c == ',')
			ok = false;
		else if (socket_directory)
			ok = true;
		else
			/* names, IPv4, IPv6 with an optional zone (fe80::1%eth0) */
			ok = is_alnum(c) || c == '.' || c == '-' || c == '_' || c == ':' || c == '%';
		if (!ok)
			return fail(error, RR_ERR_INVALID, "host \"%s\" contains %s at byte %zu: %s",
			            printable_prefix(host).text, describe_byte(c).text, i + 1, allowed);
	}
	if (host[0] == '-')
		return fail(error, RR_ERR_INVALID, "host \"%s\" starts with '-': %s",
		            printable_prefix(host).text, allowed);
	return RR_OK;
}

rr_status validate_port(int32_t port, rr_error *error) noexcept
{
	if (port < 1 || port > 65535)
		return fail(error, RR_ERR_INVALID, "port %d is out of range: allowed are 1 to 65535",
		            static_cast<int>(port));
	return RR_OK;
}

rr_status validate_weight(int32_t weight, rr_error *error) noexcept
{
	if (weight < 0 || weight > RR_MAX_WEIGHT)
		return fail(error, RR_ERR_INVALID,
		            "weight %d is out of range: allowed are 0 (never picked) to %d",
		            static_cast<int>(weight), RR_MAX_WEIGHT);
	return RR_OK;
}

rr_status validate_application_name(const char *application_name, rr_error *error) noexcept
{
	rr_status status = check_length("application_name", application_name, RR_NAME_LEN - 1, error);
	if (status != RR_OK)
		return status;
	for (size_t i = 0; application_name[i] != '\0'; ++i)
	{
		unsigned char c = static_cast<unsigned char>(application_name[i]);
		if (c < 0x20 || c >= 0x7f || c == '\'' || c == '"' || c == '\\')
			return fail(error, RR_ERR_INVALID,
			            "application_name \"%s\" contains %s at byte %zu: allowed are 1 to %d "
			            "bytes of printable ASCII without quotes or backslashes",
			            printable_prefix(application_name).text, describe_byte(c).text, i + 1,
			            RR_NAME_LEN - 1);
	}
	return RR_OK;
}

} // namespace replroute
