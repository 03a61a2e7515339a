// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * User-space probes.
 *
 * handle_readline: a uretprobe on bash's readline(), the function an
 * interactive bash reads each command line with; its return value is the
 * line (malloc'ed, NUL-terminated; NULL at end of input). The loader attaches
 * it to every distinct bash binary it finds (the host's, and each container's
 * own, by inode).
 *
 * handle_uprobe, handle_uretprobe: the uprobes of the configuration. The
 * attach cookie is the probe's index in uprobe_configs, which says how to
 * read each argument (an integer, or a string in user memory). Sleepable, so
 * that a string on a page not yet faulted in can be read.
 *
 * Registers are read from struct pt_regs as x86-64 names them (di, si, dx,
 * cx: the System V ABI's first four integer arguments; ax: the return value).
 * On another architecture the CO-RE relocations fail and the object does not
 * load: the loader says so and the other objects run.
 *
 * Its own object: a kernel without uprobes loses these events only.
 */
#include "headers/vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const struct shell_event *unused_shell_event __attribute__((unused));
const struct uprobe_event *unused_uprobe_event __attribute__((unused));
const struct uprobe_config *unused_uprobe_config __attribute__((unused));
const enum uprobe_arg_type *unused_uprobe_arg_type __attribute__((unused));

#include "common.h"

#define UPROBE_MAX_PROBES 64

/*
 * Set by the loader with cfg_cgroup_filter: the filter's cgroup as an id and
 * a depth. Sleepable programs may not use the cgroup_filter map (a cgroup
 * array), so they compare the current task's ancestor at that depth instead.
 */
const volatile __u64 cfg_cgroup_id = 0;
const volatile __u32 cfg_cgroup_level = 0;

/* The filters of fill_header for the sleepable programs, without the cgroup array. */
static __always_inline bool uprobe_wanted(void)
{
	char comm[TASK_COMM_LEN] = {};
	bpf_get_current_comm(comm, sizeof(comm));
	if (bpf_map_lookup_elem(&ignore_comms, comm))
		return false;
	return !cfg_cgroup_filter || bpf_get_current_ancestor_cgroup_id(cfg_cgroup_level) == cfg_cgroup_id;
}

/* Probe index (the attach cookie) -> how to read its arguments. Filled by the loader before attaching. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, UPROBE_MAX_PROBES);
	__type(key, __u32);
	__type(value, struct uprobe_config);
} uprobe_configs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct shell_event);
} shell_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct uprobe_event);
} uprobe_scratch SEC(".maps");

/*
 * Reads a user string of at most max bytes (NUL included) into dst. Returns
 * its length with the NUL, or 0 when unreadable; *truncated says the string
 * went on past max - 1 bytes (a full read whose last source byte is no NUL).
 */
static __always_inline long read_user_str(char *dst, __u32 max, const char *src, bool *truncated)
{
	long n = bpf_probe_read_user_str(dst, max, src);
	*truncated = false;
	if (n <= 0) {
		dst[0] = 0;
		return 0;
	}
	if (n == max) {
		char c = 0;
		bpf_probe_read_user(&c, 1, src + max - 1);
		*truncated = c != 0;
	}
	return n;
}

SEC("uretprobe")
int handle_readline(struct pt_regs *ctx)
{
	const char *line = (const char *)ctx->ax;
	if (!line)
		return 0; /* end of input */
	__u32 zero = 0;
	struct shell_event *e = bpf_map_lookup_elem(&shell_scratch, &zero);
	if (!e)
		return 0;
	bool truncated;
	long n = read_user_str(e->command, SHELL_COMMAND_MAX, line, &truncated);
	if (n <= 1)
		return 0; /* an empty line, or unreadable */
	if (!fill_header(&e->hdr, EVENT_KIND_SHELL_COMMAND, (struct task_struct *)bpf_get_current_task()))
		return 0;
	if (n > SHELL_COMMAND_MAX)
		n = SHELL_COMMAND_MAX;
	e->len = n;
	e->flags = truncated ? SHELL_FLAG_TRUNCATED : 0;
	if (emit(e, offsetof(struct shell_event, command) + n))
		count_lost(EVENT_KIND_SHELL_COMMAND);
	return 0;
}

static __always_inline int uprobe_hit(struct pt_regs *ctx, bool ret)
{
	__u32 idx = (__u32)bpf_get_attach_cookie(ctx);
	struct uprobe_config *c = bpf_map_lookup_elem(&uprobe_configs, &idx);
	__u32 zero = 0;
	struct uprobe_event *e = bpf_map_lookup_elem(&uprobe_scratch, &zero);
	if (!c || !e || !uprobe_wanted())
		return 0;
	__u64 regs[UPROBE_MAX_ARGS] = {};
	if (ret) {
		regs[0] = ctx->ax;
	} else {
		regs[0] = ctx->di;
		regs[1] = ctx->si;
		regs[2] = ctx->dx;
		regs[3] = ctx->cx;
	}
	/*
	 * A string argument may sit on a page the process has not touched yet
	 * (a literal in .rodata, before its first use), which the non-faulting
	 * read below cannot read. The programs are sleepable: one faulting byte
	 * read brings the string's first page in. After the filters (a filtered
	 * process pays no fault), before the record: nothing sleeps once the
	 * per-CPU record is being written.
	 */
#pragma unroll
	for (int i = 0; i < UPROBE_MAX_ARGS; i++) {
		char b;
		if (c->types[i] == UPROBE_ARG_STRING && regs[i])
			bpf_copy_from_user(&b, 1, (const void *)regs[i]);
	}
	__builtin_memset(&e->hdr, 0, sizeof(e->hdr));
	bpf_get_current_comm(e->hdr.comm, sizeof(e->hdr.comm));
	fill_header_of(&e->hdr, EVENT_KIND_UPROBE, (struct task_struct *)bpf_get_current_task());
	e->probe = idx;
	e->flags = 0;
#pragma unroll
	for (int i = 0; i < UPROBE_MAX_ARGS; i++) {
		e->args[i] = 0;
		e->strs[i][0] = 0;
		switch (c->types[i]) {
		case UPROBE_ARG_INT:
			e->args[i] = regs[i];
			break;
		case UPROBE_ARG_STRING: {
			bool truncated;
			e->args[i] = regs[i];
			if (!read_user_str(e->strs[i], UPROBE_STR_MAX, (const char *)regs[i], &truncated))
				e->flags |= UPROBE_FLAG_FAULT(i);
			if (truncated)
				e->flags |= UPROBE_FLAG_TRUNCATED(i);
			break;
		}
		}
	}
	if (emit(e, sizeof(*e)))
		count_lost(EVENT_KIND_UPROBE);
	return 0;
}

SEC("uprobe.s")
int handle_uprobe(struct pt_regs *ctx)
{
	return uprobe_hit(ctx, false);
}

SEC("uretprobe.s")
int handle_uretprobe(struct pt_regs *ctx)
{
	return uprobe_hit(ctx, true);
}
