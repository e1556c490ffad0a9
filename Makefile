# replroute -- PGXS build of the extension.
#
# The C shims (src/pg) and the C++ core (src/core) link into one module.  The
# core's sources are whatever src/core/*.cpp holds: CMakeLists.txt globs the
# same directory, so there is one list of sources, not two.
#
#   make && make install           build and install (install as root)
#   make installcheck              pg_regress on temporary instances, then TAP
#   make PG_CONFIG=/path/pg_config ...

MODULE_big = replroute
OBJS = \
	$(patsubst %.c,%.o,$(wildcard src/pg/*.c)) \
	$(patsubst %.cpp,%.o,$(wildcard src/core/*.cpp))
PGFILEDESC = "replroute - route reads to healthy hot standbys"

EXTENSION = replroute
DATA = replroute--1.0.sql replroute--1.0--1.1.sql replroute--1.1.sql

# libpq for the probes (src/pg/probe.c), linked as contrib's postgres_fdw
# does under PGXS.
PG_CPPFLAGS += -I include -I$(libpq_srcdir)
SHLIB_LINK_INTERNAL = $(libpq)
PG_CFLAGS += -Werror
PG_CXXFLAGS += -std=c++20 -Werror
SHLIB_LINK += -lstdc++

# pg_regress: a temporary instance with the library preloaded.  The port is
# fixed below 32768 (pg_regress's default temporary port is in the ephemeral
# range, where it can collide with outgoing connections).
REGRESS = registry bad_input routing privileges worker events settings hostile probes \
	wait_for_replay
REGRESS_OPTS = --temp-config=test/regress.conf \
	--temp-instance=./tmp_check_regress --port=25432

# The same SQL surface without shared_preload_libraries: CREATE EXTENSION must
# work and every function must say how to preload.  Its own instance, because
# the preload is fixed at postmaster start; its own output directory, so that
# it cannot clobber regression.diffs of the main run under make -j.
REGRESS_NOPRELOAD = nopreload
REGRESS_NOPRELOAD_OPTS = --temp-config=test/regress_nopreload.conf \
	--temp-instance=./tmp_check_nopreload --port=25433 \
	--outputdir=./output_nopreload

# Isolation specs (specs/*.spec): concurrent registry changes, drains and
# picks, on their own preloaded temporary instance.
ISOLATION = rr_add_same_name rr_max_nodes_race rr_drain_remove \
	rr_pick_during_change
ISOLATION_OPTS = --temp-config=test/isolation.conf \
	--temp-instance=./tmp_check_iso --port=25434

TAP_TESTS = 1
PROVE_TESTS = test/tap/*.pl

EXTRA_CLEAN = tmp_check_regress tmp_check_nopreload output_nopreload

PG_CONFIG ?= pg_config
# Debian's PGXS would otherwise emit LLVM bitcode for JIT inlining with clang
# (which cannot compile the C++20 core with PGXS's flags).  "override",
# because Makefile.global assigns with_llvm = yes after this line.
override with_llvm = no
# Track header dependencies (.deps/): a stale object built against an older
# boundary header makes a module that crashes, not one that fails to build.
# Object stems are unique across src/core and src/pg, as .deps/ is flat.
override autodepend = yes
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# pg_regress alone, without the TAP suites.
.PHONY: installcheck-regress installcheck-nopreload installcheck-isolation installcheck-tap
installcheck-regress: submake $(REGRESS_PREP)
	$(pg_regress_installcheck) $(REGRESS_OPTS) $(REGRESS)

installcheck-isolation: submake
	$(pg_isolation_regress_installcheck) $(ISOLATION_OPTS) $(ISOLATION)

# The TAP suites alone (PROVE_TESTS='test/tap/020_x.pl' picks files).
installcheck-tap: submake
	$(prove_installcheck)

installcheck-nopreload: submake
	$(pg_regress_installcheck) $(REGRESS_NOPRELOAD_OPTS) \
		--dbname=contrib_regression $(REGRESS_NOPRELOAD)

# PGXS's installcheck runs REGRESS then the TAP tests; the preload-less run
# goes first.
installcheck: installcheck-nopreload
