/*
 * boundary.cpp -- every extern "C" function of include/replroute/replroute.h.
 *
 * Each one checks its pointers and never lets an exception out: the C shims
 * call these from frames that PostgreSQL may longjmp through.  Those that can
 * fail (they allocate, or take an rr_error) run their C++ body through
 * guarded(); the others call only noexcept code.
 */
#include "replroute/replroute.h"

#include "errors.hpp"
#include "evaluator.hpp"
#include "event_log.hpp"
#include "names.hpp"
#include "probe.hpp"
#include "routing.hpp"
#include "shared_table.hpp"
#include "validate.hpp"

#include <algorithm>

using namespace replroute;

extern "C"
{

	const char *rr_state_name(rr_node_state state) noexcept
	{
		return state_name(state);
	}

	const char *rr_walsender_state_name(rr_walsender_state state) noexcept
	{
		return walsender_state_name(state);
	}

	const char *rr_wal_status_name(rr_wal_status status) noexcept
	{
		return wal_status_name(status);
	}

	rr_walsender_state rr_parse_walsender_state(const char *text) noexcept
	{
		return parse_walsender_state(text);
	}

	rr_wal_status rr_parse_wal_status(const char *text) noexcept
	{
		return parse_wal_status(text);
	}

	/* --- probes ------------------------------------------------------------- */

	const char *rr_probe_state_name(rr_probe_state state) noexcept
	{
		return probe_state_name(state);
	}

	rr_probe_target *rr_probe_create(rr_error *error) noexcept
	{
		rr_probe_target *target = nullptr;
		guarded(error, "creating a probe",
		        [&]
		        {
			        target = new rr_probe_target();
			        return RR_OK;
		        });
		return target;
	}

	void rr_probe_destroy(rr_probe_target *target) noexcept
	{
		delete target;
	}

	rr_probe_action rr_probe_poll(rr_probe_target *target, rr_timestamp now,
	                              const rr_probe_settings *settings) noexcept
	{
		if (target == nullptr || settings == nullptr)
			return RR_PROBE_DO_NOTHING;
		return target->impl.poll(now, *settings);
	}

	rr_timestamp rr_probe_next_deadline(const rr_probe_target *target,
	                                    const rr_probe_settings *settings) noexcept
	{
		if (target == nullptr || settings == nullptr)
			return RR_NO_TIME;
		return target->impl.next_deadline(*settings);
	}

	void rr_probe_on_connected(rr_probe_target *target, rr_timestamp now) noexcept
	{
		if (target != nullptr)
			target->impl.on_connected(now);
	}

	void rr_probe_on_answer(rr_probe_target *target, rr_timestamp now, bool in_recovery,
	                        rr_lsn replay_lsn) noexcept
	{
		if (target != nullptr)
			target->impl.on_answer(now, in_recovery, replay_lsn);
	}

	void rr_probe_on_failure(rr_probe_target *target, rr_timestamp now,
	                         const char *message) noexcept
	{
		if (target != nullptr)
			target->impl.on_failure(now, message);
	}

	void rr_probe_observe(const rr_probe_target *target, rr_timestamp now,
	                      const rr_probe_settings *settings, rr_probe_obs *obs) noexcept
	{
		if (obs == nullptr)
			return;
		if (target == nullptr || settings == nullptr)
		{
			*obs = rr_probe_obs{};
			return;
		}
		*obs = target->impl.observe(now, *settings);
	}

	/* --- shared table ------------------------------------------------------- */

	size_t rr_table_size(uint32_t capacity) noexcept
	{
		return table_size(capacity);
	}

	rr_shared_table *rr_table_init(void *memory, uint32_t capacity) noexcept
	{
		return table_init(memory, capacity);
	}

	void rr_table_reset(rr_shared_table *table) noexcept
	{
		if (table_is_formatted(table))
			table_reset(*table);
	}

	rr_status rr_table_snapshot(const rr_shared_table *table, rr_table_header *header,
	                            rr_node_entry *entries, uint32_t max_entries, uint32_t *n_entries,
	                            rr_error *error) noexcept
	{
		return guarded(
		    error, "rr_table_snapshot",
		    [&]() -> rr_status
		    {
			    if (n_entries != nullptr)
				    *n_entries = 0;
			    if (table == nullptr || header == nullptr || n_entries == nullptr ||
			        (entries == nullptr && max_entries > 0))
				    return fail(error, RR_ERR_NULL,
				                "rr_table_snapshot: a required argument is NULL");
			    if (!table_is_formatted(table))
				    return fail(error, RR_ERR_NOT_READY, "the shared table was not initialised");
			    TableReader reader(*table);
			    uint32_t copied = 0;
			    bool consistent = reader.read_consistent(
			        [&]
			        {
				        *header = reader.header();
				        copied = std::min({header->n_entries, max_entries, table->capacity});
				        for (uint32_t i = 0; i < copied; ++i)
					        reader.entry(i, entries[i]);
			        });
			    if (!consistent)
				    return fail(
				        error, RR_ERR_INTERNAL,
				        "the shared table stayed busy; its writer may have died mid-publication");
			    *n_entries = copied;
			    return RR_OK;
		    });
	}

	rr_status rr_table_header_snapshot(const rr_shared_table *table, rr_table_header *header,
	                                   rr_error *error) noexcept
	{
		return guarded(
		    error, "rr_table_header_snapshot",
		    [&]() -> rr_status
		    {
			    if (table == nullptr || header == nullptr)
				    return fail(error, RR_ERR_NULL,
				                "rr_table_header_snapshot: a required argument is NULL");
			    if (!table_is_formatted(table))
				    return fail(error, RR_ERR_NOT_READY, "the shared table was not initialised");
			    TableReader reader(*table);
			    if (!reader.read_consistent([&] { *header = reader.header(); }))
				    return fail(
				        error, RR_ERR_INTERNAL,
				        "the shared table stayed busy; its writer may have died mid-publication");
			    return RR_OK;
		    });
	}

	/* --- evaluator ---------------------------------------------------------- */

	rr_evaluator *rr_evaluator_create(rr_error *error) noexcept
	{
		rr_evaluator *evaluator = nullptr;
		guarded(error, "rr_evaluator_create",
		        [&]
		        {
			        evaluator = new rr_evaluator();
			        return RR_OK;
		        });
		return evaluator;
	}

	void rr_evaluator_destroy(rr_evaluator *evaluator) noexcept
	{
		delete evaluator;
	}

	rr_status rr_evaluate_and_publish(rr_evaluator *evaluator, const rr_round_input *input,
	                                  const rr_thresholds *thresholds, rr_shared_table *table,
	                                  rr_error *error) noexcept
	{
		return guarded(error, "rr_evaluate_and_publish",
		               [&]() -> rr_status
		               {
			               if (evaluator == nullptr || input == nullptr || thresholds == nullptr ||
			                   table == nullptr)
				               return fail(error, RR_ERR_NULL,
				                           "rr_evaluate_and_publish: a required argument is NULL");
			               return evaluator->impl.evaluate_and_publish(*input, *thresholds, *table,
			                                                           error);
		               });
	}

	void rr_evaluator_set_event_log(rr_evaluator *evaluator, rr_event_log *log) noexcept
	{
		if (evaluator != nullptr)
			evaluator->impl.set_event_log(log);
	}

	rr_status rr_evaluator_adopt(rr_evaluator *evaluator, const rr_shared_table *table,
	                             rr_error *error) noexcept
	{
		return guarded(error, "rr_evaluator_adopt",
		               [&]() -> rr_status
		               {
			               if (evaluator == nullptr || table == nullptr)
				               return fail(error, RR_ERR_NULL,
				                           "rr_evaluator_adopt: a required argument is NULL");
			               if (!table_is_formatted(table))
				               return fail(error, RR_ERR_NOT_READY,
				                           "the shared table was not initialised");
			               return evaluator->impl.adopt(*table, error);
		               });
	}

	/* --- event log ---------------------------------------------------------- */

	size_t rr_event_log_size(uint32_t capacity) noexcept
	{
		return event_log_size(capacity);
	}

	rr_event_log *rr_event_log_init(void *memory, uint32_t capacity) noexcept
	{
		return event_log_init(memory, capacity);
	}

	uint64_t rr_event_log_last_seq(const rr_event_log *log) noexcept
	{
		return event_log_is_formatted(log) ? log->last_seq.load(std::memory_order_acquire) : 0;
	}

	rr_status rr_event_log_read(const rr_event_log *log, uint64_t after_seq, rr_event *events,
	                            uint32_t max_events, uint32_t *n_events, rr_error *error) noexcept
	{
		return guarded(
		    error, "rr_event_log_read",
		    [&]() -> rr_status
		    {
			    if (n_events != nullptr)
				    *n_events = 0;
			    if (log == nullptr || n_events == nullptr || (events == nullptr && max_events > 0))
				    return fail(error, RR_ERR_NULL,
				                "rr_event_log_read: a required argument is NULL");
			    if (!event_log_is_formatted(log))
				    return fail(error, RR_ERR_NOT_READY, "the event log was not initialised");
			    if (!event_log_read(*log, after_seq, events, max_events, *n_events))
				    return fail(error, RR_ERR_INTERNAL,
				                "the event log stayed busy; its writer may be starved");
			    return RR_OK;
		    });
	}

	rr_status rr_event_json(const rr_event *event, char *buffer, size_t size,
	                        rr_error *error) noexcept
	{
		return guarded(error, "rr_event_json",
		               [&]() -> rr_status
		               {
			               if (event == nullptr || buffer == nullptr)
				               return fail(error, RR_ERR_NULL,
				                           "rr_event_json: a required argument is NULL");
			               if (!event_json(*event, buffer, size))
				               return fail(error, RR_ERR_TOO_LONG,
				                           "rr_event_json: the buffer of %zu bytes is too small",
				                           size);
			               return RR_OK;
		               });
	}

	/* --- routing ------------------------------------------------------------ */

	rr_unroutable_cause rr_table_freshness(const rr_table_header *header, rr_timestamp now,
	                                       int64_t stale_after_us, int64_t *age_us) noexcept
	{
		int64_t age = RR_NO_DURATION;
		rr_unroutable_cause cause =
		    header == nullptr ? RR_CAUSE_NO_DATA : judge_table(*header, now, stale_after_us, age);
		if (age_us != nullptr)
			*age_us = age;
		return cause;
	}

	bool rr_entry_qualifies(const rr_node_entry *entry, const rr_pick_request *request) noexcept
	{
		if (entry == nullptr || request == nullptr)
			return false;
		return qualifies(entry->routable, entry->lag_bytes, entry->lag_us, entry->known_replay_lsn,
		                 *request);
	}

	rr_status rr_pick_reader(rr_shared_table *table, const rr_pick_request *request,
	                         rr_pick_result *result, rr_error *error) noexcept
	{
		return guarded(error, "rr_pick_reader",
		               [&]() -> rr_status
		               {
			               if (table == nullptr || request == nullptr || result == nullptr)
				               return fail(error, RR_ERR_NULL,
				                           "rr_pick_reader: a required argument is NULL");
			               return pick_reader(*table, *request, *result, error);
		               });
	}

	rr_status rr_list_readers(const rr_shared_table *table, const rr_pick_request *request,
	                          rr_node_entry *entries, uint32_t max_entries, uint32_t *n_entries,
	                          rr_unroutable_cause *cause, rr_error *error) noexcept
	{
		return guarded(error, "rr_list_readers",
		               [&]() -> rr_status
		               {
			               if (table == nullptr || request == nullptr || n_entries == nullptr ||
			                   cause == nullptr)
				               return fail(error, RR_ERR_NULL,
				                           "rr_list_readers: a required argument is NULL");
			               return list_readers(*table, *request, entries, max_entries, *n_entries,
			                                   *cause, error);
		               });
	}

	/* --- validation --------------------------------------------------------- */

	rr_status rr_validate_node_name(const char *name, rr_error *error) noexcept
	{
		return guarded(error, "rr_validate_node_name",
		               [&] { return validate_node_name(name, error); });
	}

	rr_status rr_validate_host(const char *host, rr_error *error) noexcept
	{
		return guarded(error, "rr_validate_host", [&] { return validate_host(host, error); });
	}

	rr_status rr_validate_port(int32_t port, rr_error *error) noexcept
	{
		return guarded(error, "rr_validate_port", [&] { return validate_port(port, error); });
	}

	rr_status rr_validate_weight(int32_t weight, rr_error *error) noexcept
	{
		return guarded(error, "rr_validate_weight", [&] { return validate_weight(weight, error); });
	}

	rr_status rr_validate_application_name(const char *application_name, rr_error *error) noexcept
	{
		return guarded(error, "rr_validate_application_name",
		               [&] { return validate_application_name(application_name, error); });
	}

} // extern "C"
