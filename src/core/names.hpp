/*
 * names.hpp -- the SQL-visible words of the boundary's enums, and parsing of
 * the text PostgreSQL shows in pg_stat_replication and pg_replication_slots.
 */
#pragma once

#ifdef POSTGRES_H
#error "src/core headers are C++ internals of replroute; never include them next to postgres.h"
#endif

#include "replroute/replroute.h"

namespace replroute
{

const char *state_name(rr_node_state state) noexcept;
const char *walsender_state_name(rr_walsender_state state) noexcept;
const char *wal_status_name(rr_wal_status status) noexcept;
const char *probe_state_name(rr_probe_state state) noexcept;
rr_walsender_state parse_walsender_state(const char *text) noexcept;
rr_wal_status parse_wal_status(const char *text) noexcept;

} // namespace replroute
