// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Privilege and isolation: setuid/setreuid/setresuid, setgid/setregid/
 * setresgid, capset, setns, unshare and clone/clone3 with CLONE_NEW* flags,
 * mount, init_module/finit_module, ptrace PTRACE_ATTACH/PTRACE_SEIZE,
 * bpf(BPF_PROG_LOAD), memfd_create; from the syscalls tracepoints, enter
 * paired with exit per thread so that the record carries the result.
 *
 * Its own object: a kernel refusing these programs loses these events only.
 */
#include "headers/vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const struct priv_event *unused_priv_event __attribute__((unused));
const enum priv_op *unused_priv_op __attribute__((unused));

#include "common.h"

#define CLONE_NEW_MASK 0x7E020000ULL /* NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET */
#define CLONE_NEWTIME 0x80ULL        /* unshare and clone3 only: clone's low byte is the exit signal */
#define PTRACE_ATTACH 16
#define PTRACE_SEIZE 0x4206
#define BPF_PROG_LOAD_CMD 5

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct priv_event);
} priv_pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct priv_event);
} priv_scratch SEC(".maps");

/*
 * A zeroed record with its header and the syscall's nargs args, or NULL when
 * filtered out. A program may not load ctx beyond the tracepoint's record
 * (attaching fails with EACCES: a sys_enter record holds only the syscall's
 * own args), hence the sized copy.
 */
static __always_inline struct priv_event *begin_n(__u32 kind, __u32 op, struct trace_event_raw_sys_enter *ctx, __u32 nargs)
{
	__u32 zero = 0;
	struct priv_event *e = bpf_map_lookup_elem(&priv_scratch, &zero);
	if (!e)
		return NULL;
	__builtin_memset(e, 0, sizeof(*e));
	if (!fill_header(&e->hdr, kind, (struct task_struct *)bpf_get_current_task()))
		return NULL;
	e->op = op;
	if (nargs > 6)
		nargs = 6;
	if (nargs)
		bpf_probe_read_kernel(e->args, nargs * sizeof(__u64), (const void *)ctx->args);
	return e;
}

static __always_inline int keep(struct priv_event *e)
{
	__u32 tid = e->hdr.pid;
	bpf_map_update_elem(&priv_pending, &tid, e, BPF_ANY);
	return 0;
}

static __always_inline int simple(__u32 kind, __u32 op, struct trace_event_raw_sys_enter *ctx, __u32 nargs)
{
	struct priv_event *e = begin_n(kind, op, ctx, nargs);
	return e ? keep(e) : 0;
}

SEC("tracepoint/syscalls/sys_exit_priv")
int handle_priv_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct priv_event *e = bpf_map_lookup_elem(&priv_pending, &tid);
	if (!e)
		return 0; /* not ours, or clone's child returning */
	e->result = ctx->ret;
	if (emit(e, sizeof(*e)))
		count_lost(e->hdr.kind);
	bpf_map_delete_elem(&priv_pending, &tid);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_setuid")
int handle_setuid(struct trace_event_raw_sys_enter *ctx) { return simple(EVENT_KIND_PRIV_SETUID, PRIV_OP_SETUID, ctx, 1); }

SEC("tracepoint/syscalls/sys_enter_setreuid")
int handle_setreuid(struct trace_event_raw_sys_enter *ctx) { return simple(EVENT_KIND_PRIV_SETUID, PRIV_OP_SETREUID, ctx, 2); }

SEC("tracepoint/syscalls/sys_enter_setresuid")
int handle_setresuid(struct trace_event_raw_sys_enter *ctx) { return simple(EVENT_KIND_PRIV_SETUID, PRIV_OP_SETRESUID, ctx, 3); }

SEC("tracepoint/syscalls/sys_enter_setgid")
int handle_setgid(struct trace_event_raw_sys_enter *ctx) { return simple(EVENT_KIND_PRIV_SETGID, PRIV_OP_SETGID, ctx, 1); }

SEC("tracepoint/syscalls/sys_enter_setregid")
int handle_setregid(struct trace_event_raw_sys_enter *ctx) { return simple(EVENT_KIND_PRIV_SETGID, PRIV_OP_SETREGID, ctx, 2); }

SEC("tracepoint/syscalls/sys_enter_setresgid")
int handle_setresgid(struct trace_event_raw_sys_enter *ctx) { return simple(EVENT_KIND_PRIV_SETGID, PRIV_OP_SETRESGID, ctx, 3); }

SEC("tracepoint/syscalls/sys_enter_capset")
int handle_capset(struct trace_event_raw_sys_enter *ctx)
{
	struct priv_event *e = begin_n(EVENT_KIND_PRIV_CAPSET, PRIV_OP_CAPSET, ctx, 2);
	if (!e)
		return 0;
	struct __user_cap_header_struct h = {};
	struct __user_cap_data_struct d[2] = {};
	bpf_probe_read_user(&h, sizeof(h), (const void *)ctx->args[0]);
	if (bpf_probe_read_user(d, sizeof(d), (const void *)ctx->args[1]))
		bpf_probe_read_user(d, sizeof(d[0]), (const void *)ctx->args[1]); /* version 1: one set */
	e->args[0] = d[0].effective | ((__u64)d[1].effective << 32);
	e->args[1] = d[0].permitted | ((__u64)d[1].permitted << 32);
	e->args[2] = d[0].inheritable | ((__u64)d[1].inheritable << 32);
	e->args[3] = (__u32)h.pid;
	return keep(e);
}

SEC("tracepoint/syscalls/sys_enter_setns")
int handle_setns(struct trace_event_raw_sys_enter *ctx) { return simple(EVENT_KIND_NS_SETNS, PRIV_OP_SETNS, ctx, 2); }

SEC("tracepoint/syscalls/sys_enter_unshare")
int handle_unshare(struct trace_event_raw_sys_enter *ctx)
{
	if (!(ctx->args[0] & (CLONE_NEW_MASK | CLONE_NEWTIME)))
		return 0;
	return simple(EVENT_KIND_NS_UNSHARE, PRIV_OP_UNSHARE, ctx, 1);
}

SEC("tracepoint/syscalls/sys_enter_clone")
int handle_clone(struct trace_event_raw_sys_enter *ctx)
{
	if (!(ctx->args[0] & CLONE_NEW_MASK))
		return 0;
	return simple(EVENT_KIND_NS_UNSHARE, PRIV_OP_CLONE, ctx, 5);
}

SEC("tracepoint/syscalls/sys_enter_clone3")
int handle_clone3(struct trace_event_raw_sys_enter *ctx)
{
	__u64 flags = 0;
	bpf_probe_read_user(&flags, sizeof(flags), (const void *)ctx->args[0]); /* clone_args.flags */
	if (!(flags & (CLONE_NEW_MASK | CLONE_NEWTIME)))
		return 0;
	struct priv_event *e = begin_n(EVENT_KIND_NS_UNSHARE, PRIV_OP_CLONE3, ctx, 2);
	if (!e)
		return 0;
	e->args[0] = flags;
	return keep(e);
}

SEC("tracepoint/syscalls/sys_enter_mount")
int handle_mount(struct trace_event_raw_sys_enter *ctx)
{
	struct priv_event *e = begin_n(EVENT_KIND_NS_MOUNT, PRIV_OP_MOUNT, ctx, 5);
	if (!e)
		return 0;
	bpf_probe_read_user_str(e->str2, sizeof(e->str2), (const void *)ctx->args[0]);
	bpf_probe_read_user_str(e->str1, sizeof(e->str1), (const void *)ctx->args[1]);
	bpf_probe_read_user_str(e->name, sizeof(e->name), (const void *)ctx->args[2]);
	return keep(e);
}

SEC("tracepoint/syscalls/sys_enter_init_module")
int handle_init_module(struct trace_event_raw_sys_enter *ctx) { return simple(EVENT_KIND_MODULE_LOAD, PRIV_OP_INIT_MODULE, ctx, 3); }

SEC("tracepoint/syscalls/sys_enter_finit_module")
int handle_finit_module(struct trace_event_raw_sys_enter *ctx) { return simple(EVENT_KIND_MODULE_LOAD, PRIV_OP_FINIT_MODULE, ctx, 3); }

SEC("tracepoint/syscalls/sys_enter_ptrace")
int handle_ptrace(struct trace_event_raw_sys_enter *ctx)
{
	long req = ctx->args[0];
	if (req != PTRACE_ATTACH && req != PTRACE_SEIZE)
		return 0;
	return simple(EVENT_KIND_PTRACE, PRIV_OP_PTRACE, ctx, 4);
}

SEC("tracepoint/syscalls/sys_enter_bpf")
int handle_bpf(struct trace_event_raw_sys_enter *ctx)
{
	if (ctx->args[0] != BPF_PROG_LOAD_CMD)
		return 0;
	struct priv_event *e = begin_n(EVENT_KIND_BPF_LOAD, PRIV_OP_BPF, ctx, 3);
	if (!e)
		return 0;
	/* union bpf_attr, BPF_PROG_LOAD part: prog_type at 0, insn_cnt at 4, prog_name[16] at 48 (UAPI). */
	__u32 head[2] = {};
	const char *attr = (const char *)ctx->args[1];
	bpf_probe_read_user(head, sizeof(head), attr);
	e->args[1] = head[0];
	e->args[2] = head[1];
	if (ctx->args[2] >= 64)
		bpf_probe_read_user(e->name, 16, attr + 48);
	return keep(e);
}

SEC("tracepoint/syscalls/sys_enter_memfd_create")
int handle_memfd_create(struct trace_event_raw_sys_enter *ctx)
{
	struct priv_event *e = begin_n(EVENT_KIND_MEMFD_CREATE, PRIV_OP_MEMFD_CREATE, ctx, 2);
	if (!e)
		return 0;
	bpf_probe_read_user_str(e->str1, sizeof(e->str1), (const void *)ctx->args[0]);
	return keep(e);
}
