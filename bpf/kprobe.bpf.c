// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Kernel-function hooks, each in two variants: fentry/fexit (BPF trampolines:
 * the cheapest, where the kernel allows them) and kprobe/kretprobe (any kernel
 * with kprobes). The loader tries each hook's fentry program, then its kprobe
 * program, and runs without the hook when neither loads: the tracepoint
 * objects do not depend on this one.
 *
 *   commit_creds          privilege.escalation: the new credentials have uid
 *                         or euid 0, the old ones had not, and the task is in
 *                         no syscall that grants that (granting_syscalls;
 *                         an execve only when its executable is set-uid to the
 *                         new euid). Optionally SIGKILL.
 *   security_file_open    file.open of opens that no syscall tracepoint sees
 *                         (io_uring, open_by_handle_at, 32-bit syscalls,
 *                         kernel threads), path walked and sensitive files
 *                         recognised as file.bpf.c does.
 *   tcp_connect           network.connect, likewise (io_uring, sendto with
 *                         MSG_FASTOPEN, ...).
 *   inet_csk_accept       (its return) network.accept, likewise.
 *
 * Which syscall a thread is in comes from its saved user registers
 * (bpf_task_pt_regs: orig_ax, and TS_COMPAT for the 32-bit table), so no
 * program runs at every syscall. The file and network hooks drop what a
 * tracepoint object reports already: a thread inside a syscall of
 * traced_syscalls (the loader fills it with what those objects attached).
 *
 * x86-64 only (bpf2go -target amd64): kprobes read arguments from registers.
 */
#include "headers/vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const struct escalation_event *unused_escalation_event __attribute__((unused));
const enum hook_id *unused_hook_id __attribute__((unused));

#include "common.h"
#include "sensitive.h"
#include "file_filter.h"

#define AF_INET 2
#define AF_INET6 10
#define S_ISUID_BIT 04000
#define TS_COMPAT_BIT 0x0002  /* x86 thread_info.status: in a 32-bit syscall */
#define SYSCALL_COMPAT_KEY (1U << 31) /* key bit of the syscall maps: the number is of the 32-bit table */

/* Set by the loader before load. */
const volatile __u8 cfg_kill_escalation = 0; /* 1: SIGKILL a task that escalates */
const volatile __u8 cfg_port_filter = 0;     /* 1: only the ports in ports_of_interest */

/* Values of granting_syscalls. */
#define GRANTS 1      /* setuid & co: grants what the caller may */
#define GRANTS_EXEC 2 /* execve, execveat: grants what a set-uid executable's owner is */

/* Syscall number (| SYSCALL_COMPAT_KEY) -> GRANTS or GRANTS_EXEC. Filled by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u8);
} granting_syscalls SEC(".maps");

/*
 * Syscall number (| SYSCALL_COMPAT_KEY) -> the hooks (1 << enum hook_id) whose
 * records a tracepoint object sends for it already: open & co for
 * security_file_open, connect for tcp_connect, accept & co for
 * inet_csk_accept. Per hook, because io_uring completes an operation in
 * task_work at the return of whatever syscall its thread makes next: an
 * io_uring accept finished on the way out of connect() is still reported.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u8);
} traced_syscalls SEC(".maps");

/* Calls of each hook (enum hook_id), per CPU: that a hook runs, whatever it reported. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HOOK_MAX);
	__type(key, __u32);
	__type(value, __u64);
} hook_calls SEC(".maps");

/* SIGKILLs sent on escalation (one slot, per CPU). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} escalation_kills SEC(".maps");

/* The file object's filters (file_filter.h), shared with it. */

/* The network object's port filter, filled the same way. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u8);
} ports_of_interest SEC(".maps");

struct path_walk {
	__u32 off;
	char buf[PATH_WALK_MAX];
	char slack[PATH_WALK_NAME_MAX];
};

struct scratch {
	struct file_event file;
	struct path_key key;
	struct path_walk walk;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} hook_scratch SEC(".maps");

static __always_inline void count_call(__u32 hook)
{
	__u64 *n = bpf_map_lookup_elem(&hook_calls, &hook);
	if (n)
		*n += 1;
}

/*
 * The syscall the current thread is in, as the granting_syscalls and
 * traced_syscalls keys have it: orig_ax of its saved user registers (negative
 * when it entered the kernel otherwise: an interrupt, a fault), with
 * SYSCALL_COMPAT_KEY for a 32-bit syscall. ESCALATION_NO_SYSCALL: none.
 */
static __always_inline __u32 current_syscall(struct task_struct *task)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	long nr = BPF_CORE_READ(regs, orig_ax);
	if (nr < 0)
		return ESCALATION_NO_SYSCALL;
	__u32 key = (__u32)nr;
	if (bpf_core_field_exists(task->thread_info.status) && (BPF_CORE_READ(task, thread_info.status) & TS_COMPAT_BIT))
		key |= SYSCALL_COMPAT_KEY;
	return key;
}

/* A tracepoint object reports what hook sees in the thread's current syscall. */
static __always_inline bool traced(struct task_struct *task, __u32 hook)
{
	__u32 nr = current_syscall(task);
	__u8 *hooks = bpf_map_lookup_elem(&traced_syscalls, &nr);
	return hooks && (*hooks & (1 << hook));
}

/* ---- commit_creds: privilege.escalation ---------------------------------- */

/* The executable the task runs now (during an execve: the new one) is set-uid to uid. */
static __always_inline bool setuid_executable(struct task_struct *task, __u32 uid)
{
	struct inode *ino = BPF_CORE_READ(task, mm, exe_file, f_inode);
	if (!ino)
		return false;
	return (BPF_CORE_READ(ino, i_mode) & S_ISUID_BIT) && BPF_CORE_READ(ino, i_uid.val) == uid;
}

static __always_inline int on_commit_creds(struct cred *new)
{
	count_call(HOOK_COMMIT_CREDS);
	struct task_struct *task = bpf_get_current_task_btf();
	const struct cred *old = BPF_CORE_READ(task, real_cred);
	__u32 old_uid = BPF_CORE_READ(old, uid.val), old_euid = BPF_CORE_READ(old, euid.val);
	__u32 new_uid = BPF_CORE_READ(new, uid.val), new_euid = BPF_CORE_READ(new, euid.val);
	if (!((new_uid == 0 && old_uid != 0) || (new_euid == 0 && old_euid != 0)))
		return 0; /* no uid 0 gained: most calls end here */

	__u32 nr = current_syscall(task);
	__u32 flags = 0;
	__u8 *grants = bpf_map_lookup_elem(&granting_syscalls, &nr);
	if (grants) {
		if (*grants == GRANTS)
			return 0;
		/* An execve: bprm's credentials, committed from begin_new_exec after the
		 * new executable became mm->exe_file. Legitimate when it is set-uid to the
		 * new euid (the real uid never changes in an exec). */
		if (setuid_executable(task, new_euid))
			return 0;
		flags |= ESCALATION_FLAG_EXEC;
	}
	if (nr != ESCALATION_NO_SYSCALL && (nr & SYSCALL_COMPAT_KEY))
		flags |= ESCALATION_FLAG_COMPAT;
	/* Within cgroup_path only, when set. ignore_comms does not apply: a process
	 * must not hide an escalation by naming itself like an ignored one. */
	if (cfg_cgroup_filter && bpf_current_task_under_cgroup(&cgroup_filter, 0) != 1)
		return 0;

	if (cfg_kill_escalation && bpf_send_signal(SIGKILL_NR) == 0) {
		flags |= ESCALATION_FLAG_KILLED;
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&escalation_kills, &zero);
		if (n)
			*n += 1;
	}
	struct escalation_event e;
	__builtin_memset(&e, 0, sizeof(e));
	bpf_get_current_comm(e.hdr.comm, sizeof(e.hdr.comm));
	fill_header_of(&e.hdr, EVENT_KIND_PRIV_ESCALATION, task); /* the old ids: task->cred is not replaced yet */
	e.new_uid = new_uid;
	e.new_euid = new_euid;
	e.new_gid = BPF_CORE_READ(new, gid.val);
	e.new_egid = BPF_CORE_READ(new, egid.val);
	e.syscall = nr == ESCALATION_NO_SYSCALL ? nr : nr & ~SYSCALL_COMPAT_KEY;
	e.flags = flags;
	e.hook = HOOK_COMMIT_CREDS;
	if (emit(&e, sizeof(e)))
		count_lost(EVENT_KIND_PRIV_ESCALATION);
	return 0;
}

SEC("fentry/commit_creds")
int BPF_PROG(fentry_commit_creds, struct cred *new)
{
	return on_commit_creds(new);
}

SEC("kprobe/commit_creds")
int BPF_KPROBE(kprobe_commit_creds, struct cred *new)
{
	return on_commit_creds(new);
}

/* ---- security_file_open: file.open -------------------------------------- */

static __always_inline int on_file_open(struct file *f)
{
	count_call(HOOK_SECURITY_FILE_OPEN);
	struct task_struct *task = bpf_get_current_task_btf();
	if (traced(task, HOOK_SECURITY_FILE_OPEN))
		return 0;
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&hook_scratch, &zero);
	if (!s)
		return 0;
	struct file_event *e = &s->file;
	struct path_key *k = &s->key;
	struct path_walk *w = &s->walk;

	struct file_id id = {
		.ino = BPF_CORE_READ(f, f_inode, i_ino),
		.dev = BPF_CORE_READ(f, f_inode, i_sb, s_dev),
	};
	e->file_flags = FILE_FLAG_RESOLVED;
	if (bpf_map_lookup_elem(&file_inodes, &id))
		e->file_flags |= FILE_FLAG_INODE_MATCH;
	/* As file.bpf.c: a container-escape or another process's memory file is
	 * reported whatever the prefixes (sensitive.h); owner: its target's tgid. */
	__u32 target = (__u32)-1;
	__u32 sensitive = sensitive_kind(f, &target);
	e->file_flags |= sensitive << FILE_SENSITIVE_SHIFT;
	walk_path(BPF_CORE_READ(f, f_path.dentry), BPF_CORE_READ(f, f_path.mnt), task, w->buf, &w->off,
		  FILE_PATH_DEPTH);
	__u32 off = w->off;
	if (off >= PATH_WALK_MAX)
		return 0; /* unknown: too deep or too long */
	__u32 n = PATH_WALK_MAX - off; /* NUL included */
	if (bpf_probe_read_kernel(k->data, n & (PATH_WALK_MAX - 1), &w->buf[off & (PATH_WALK_MAX - 1)]))
		return 0;
	k->prefixlen = n * 8;
	if (!bpf_map_lookup_elem(&file_prefixes, k) && !(e->file_flags & FILE_FLAG_INODE_MATCH) && !sensitive)
		return 0;
	if (!fill_header(&e->hdr, EVENT_KIND_FILE_OPEN, task))
		return 0;
	bpf_probe_read_kernel(e->data, FILE_PATH_MAX, k->data);
	e->path_len = n;
	e->target_len = 0;
	e->raw_len = 0;
	e->result = 0; /* no syscall returned an fd */
	e->flags = BPF_CORE_READ(f, f_flags);
	e->mode = 0;
	e->owner = target;
	e->group = (__u32)-1;
	e->ino = id.ino;
	e->dev = id.dev;
	e->hook = HOOK_SECURITY_FILE_OPEN;
	__u64 size = offsetof(struct file_event, data) + (__u64)n;
	barrier_var(size); /* else clang folds the bound below into its own knowledge, and the verifier has none */
	if (size > sizeof(*e))
		size = sizeof(*e);
	if (emit(e, size))
		count_lost(EVENT_KIND_FILE_OPEN);
	return 0;
}

SEC("fentry/security_file_open")
int BPF_PROG(fentry_security_file_open, struct file *file)
{
	return on_file_open(file);
}

SEC("kprobe/security_file_open")
int BPF_KPROBE(kprobe_security_file_open, struct file *file)
{
	return on_file_open(file);
}

/* ---- tcp_connect, inet_csk_accept: network.connect, network.accept ---------- */

static __always_inline bool port_wanted(__u16 port)
{
	return !cfg_port_filter || bpf_map_lookup_elem(&ports_of_interest, &port);
}

static __always_inline int on_sock(struct sock *sk, __u32 kind, __u32 hook)
{
	count_call(hook);
	if (!sk)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	if (traced(task, hook))
		return 0;
	struct net_event e;
	__builtin_memset(&e, 0, sizeof(e));
	e.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (e.family != AF_INET && e.family != AF_INET6)
		return 0;
	e.sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	e.dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (!port_wanted(kind == EVENT_KIND_NET_CONNECT ? e.dport : e.sport))
		return 0;
	if (!fill_header(&e.hdr, kind, task))
		return 0;
	if (e.family == AF_INET6) {
		BPF_CORE_READ_INTO(&e.saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&e.daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	} else {
		BPF_CORE_READ_INTO((__u32 *)e.saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)e.daddr, sk, __sk_common.skc_daddr);
	}
	e.protocol = BPF_CORE_READ(sk, sk_protocol);
	e.fd = -1; /* no syscall, no fd */
	e.hook = hook;
	if (emit(&e, sizeof(e)))
		count_lost(kind);
	return 0;
}

SEC("fentry/tcp_connect")
int BPF_PROG(fentry_tcp_connect, struct sock *sk)
{
	return on_sock(sk, EVENT_KIND_NET_CONNECT, HOOK_TCP_CONNECT);
}

SEC("kprobe/tcp_connect")
int BPF_KPROBE(kprobe_tcp_connect, struct sock *sk)
{
	return on_sock(sk, EVENT_KIND_NET_CONNECT, HOOK_TCP_CONNECT);
}

/* Its arguments changed in 6.10 (flags, err, kern -> struct proto_accept_arg *):
 * the return value is read with bpf_get_func_ret, whatever they are. */
SEC("fexit/inet_csk_accept")
int fexit_inet_csk_accept(__u64 *ctx)
{
	__u64 ret = 0;
	bpf_get_func_ret(ctx, &ret);
	return on_sock((struct sock *)ret, EVENT_KIND_NET_ACCEPT, HOOK_INET_CSK_ACCEPT);
}

SEC("kretprobe/inet_csk_accept")
int BPF_KRETPROBE(kretprobe_inet_csk_accept, struct sock *newsk)
{
	return on_sock(newsk, EVENT_KIND_NET_ACCEPT, HOOK_INET_CSK_ACCEPT);
}
