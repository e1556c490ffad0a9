/*
 * validate.hpp -- checks of registry input.  The messages become SQL ERROR
 * messages: they say what is wrong and what is allowed, and echo at most a
 * short printable prefix of the input.
 */
#pragma once

#ifdef POSTGRES_H
#error "src/core headers are C++ internals of replroute; never include them next to postgres.h"
#endif

#include "replroute/replroute.h"

namespace replroute
{

rr_status validate_node_name(const char *name, rr_error *error) noexcept;
rr_status validate_host(const char *host, rr_error *error) noexcept;
rr_status validate_port(int32_t port, rr_error *error) noexcept;
rr_status validate_weight(int32_t weight, rr_error *error) noexcept;
rr_status validate_application_name(const char *application_name, rr_error *error) noexcept;

} // namespace replroute
