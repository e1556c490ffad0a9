/*
 * errors.hpp -- how the core reports failure across the C boundary.
 *
 * PostgreSQL raises errors with longjmp, which would skip C++ destructors, so
 * the core never raises them: every extern "C" entry point runs its body
 * through guarded(), which turns any exception into RR_ERR_INTERNAL and a
 * message, and the C shim turns the message into ereport().
 */
#pragma once

#ifdef POSTGRES_H
#error "src/core headers are C++ internals of replroute; never include them next to postgres.h"
#endif

#include "replroute/replroute.h"

#include <exception>
#include <new>

namespace replroute
{

void clear_error(rr_error *error) noexcept;

/* Records status and a printf-style message in error (which may be NULL);
 * returns status so that callers can write `return fail(...)`. */
rr_status fail(rr_error *error, rr_status status, const char *format, ...) noexcept
    __attribute__((format(printf, 3, 4)));

template <class Body>
rr_status guarded(rr_error *error, const char *what, Body &&body) noexcept
{
	clear_error(error);
	try
	{
		rr_status status = body();
		if (status != RR_OK && error != nullptr && error->message[0] == '\0')
			return fail(error, status, "%s failed", what);
		if (error != nullptr)
			error->status = status;
		return status;
	}
	catch (const std::bad_alloc &)
	{
		return fail(error, RR_ERR_INTERNAL, "%s: out of memory", what);
	}
	catch (const std::exception &ex)
	{
		return fail(error, RR_ERR_INTERNAL, "%s: internal error: %s", what, ex.what());
	}
	catch (...)
	{
		return fail(error, RR_ERR_INTERNAL, "%s: internal error: unknown exception", what);
	}
}

} // namespace replroute
