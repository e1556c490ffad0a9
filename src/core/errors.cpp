/*
 * errors.cpp -- filling rr_error.
 */
#include "errors.hpp"

#include <cstdarg>
#include <cstdio>

namespace replroute
{

void clear_error(rr_error *error) noexcept
{
	if (error == nullptr)
		return;
	error->status = RR_OK;
	error->message[0] = '\0';
}

rr_status fail(rr_error *error, rr_status status, const char *format, ...) noexcept
{
	if (error == nullptr)
		return status;
	error->status = status;
	va_list args;
	va_start(args, format);
	std::vsnprintf(error->message, sizeof error->message, format, args);
	va_end(args);
	return status;
}

} // namespace replroute
