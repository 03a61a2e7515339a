// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Process lifecycle: exec and exit, from BTF-typed tracepoints
 * (tp_btf/sched_process_exec, tp_btf/sched_process_exit). Neither needs
 * kprobes, fentry or tracefs. Records go to one BPF ring buffer; a failed
 * reservation is counted per event kind in a per-CPU array, so nothing is
 * lost silently.
 */
#include "headers/vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Keep these types in the object's BTF so that bpf2go emits Go types for them. */
const struct exit_event *unused_exit_event __attribute__((unused));
const struct fork_event *unused_fork_event __attribute__((unused));
const enum event_kind *unused_event_kind __attribute__((unused));

#include "common.h"

/* Set by the loader before load (spec.Variables). */
const volatile __u32 cfg_max_args = 16; /* argv entries kept per exec; <= EXEC_MAX_ARGS_CAP */
const volatile __u8 cfg_enforce = 0;    /* 1: the policy kills executables or enforce_comms has entries */
/*
 * 1: process.fork records are off, so only the forks whose child's parent is
 * not the forker (CLONE_PARENT, as runc's init stages are made) are reported:
 * user space cannot infer those children's executable from their parent.
 */
const volatile __u8 cfg_fork_clone_parent_only = 0;

/*
 * Enforcement: an exec (that passed the filters) of an executable the policy
 * kills (exec_policy_files by inode, exec_policy_paths by resolved path, or,
 * for a script, whose own path as execve received it is a kill path), or
 * whose new comm is a key of enforce_comms, gets SIGKILL before its first
 * user-space instruction. Filled by the loader.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EXEC_POLICY_MAX_ENTRIES);
	__type(key, char[TASK_COMM_LEN]);
	__type(value, __u8);
} enforce_comms SEC(".maps");

/* SIGKILLs sent by enforcement (one slot, per CPU). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} enforce_kills SEC(".maps");

/* Returns the EXEC_FLAG_KILLED_* flag when the exec matched and SIGKILL was sent, else 0. */
static __always_inline __u32 enforce(struct exec_event *e, struct file_id *fid, struct task_struct *task)
{
	__u32 zero = 0;
	__u32 flag = 0;
	__u32 by_file, by_path;

	const char *exe = e->exe_off < EXEC_EXE_MAX ? &e->exe[e->exe_off & (EXEC_EXE_MAX - 1)] : NULL;
	exec_policy(fid, exe, task, &by_file, &by_path);
	if (by_file & EXEC_POLICY_KILL)
		flag = EXEC_FLAG_KILLED_PATH | EXEC_FLAG_BY_FILE;
	else if (by_path & EXEC_POLICY_KILL)
		flag = EXEC_FLAG_KILLED_PATH;
	else if (!(e->flags & EXEC_FLAG_FILENAME_TRUNCATED) && e->data[0] == '/') {
		/* A script: bprm->file is its interpreter by now; its own path is only as execve got it. */
		exec_policy(fid, e->data, task, &by_file, &by_path);
		if (by_path & EXEC_POLICY_KILL)
			flag = EXEC_FLAG_KILLED_PATH;
	}
	if (!flag && bpf_map_lookup_elem(&enforce_comms, e->hdr.comm))
		flag = EXEC_FLAG_KILLED_COMM;
	if (!flag || (fid->ino == cfg_self_exe_ino && fid->dev == cfg_self_exe_dev))
		return 0;
	/* The current task is the one exec'ing: the whole process dies on its way back to user space. */
	if (bpf_send_signal(SIGKILL_NR))
		return 0;
	__u64 *n = bpf_map_lookup_elem(&enforce_kills, &zero);
	if (n)
		*n += 1; /* per-CPU slot: no atomics needed */
	return flag;
}

/* Scratch space for building an exec record (too large for the 512-byte stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_event);
} exec_scratch SEC(".maps");

/* The working directory, as walk_path resolves it (the container's view); unknown: cwd_off = EXEC_CWD_MAX. */
static __always_inline void read_cwd(struct task_struct *task, struct exec_event *e)
{
	_Static_assert(EXEC_CWD_MAX == PATH_WALK_MAX, "the cwd is a walked path");
	walk_path(BPF_CORE_READ(task, fs, pwd.dentry), BPF_CORE_READ(task, fs, pwd.mnt), task, e->cwd, &e->cwd_off,
		  EXEC_CWD_DEPTH);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 zero = 0;
	struct exec_event *e = bpf_map_lookup_elem(&exec_scratch, &zero);
	if (!e)
		return 0;
	if (!fill_header(&e->hdr, EVENT_KIND_EXEC, task))
		return 0;
	e->flags = 0;
	e->argc = 0;

	/* The path as execve received it, after the caller's PATH search. */
	const char *fn = BPF_CORE_READ(bprm, filename);
	long n = bpf_probe_read_kernel_str(e->data, EXEC_FILENAME_MAX, fn);
	if (n <= 0) {
		e->data[0] = 0;
		n = 1;
	}
	if (n == EXEC_FILENAME_MAX)
		e->flags |= EXEC_FLAG_FILENAME_TRUNCATED;
	e->filename_len = n;

	/* Fileless execution: the file executed is a memfd, whatever path named it. */
	char dn[8] = {};
	const unsigned char *dname = BPF_CORE_READ(bprm, file, f_path.dentry, d_name.name);
	if (dname && bpf_probe_read_kernel_str(dn, sizeof(dn), dname) > 6 && dn[0] == 'm' && dn[1] == 'e' &&
	    dn[2] == 'm' && dn[3] == 'f' && dn[4] == 'd' && dn[5] == ':')
		e->flags |= EXEC_FLAG_MEMFD;

	/* Drift: the executable was written since the probe started (created_files, filled by the file object). */
	struct file_id fid = {
		.ino = BPF_CORE_READ(bprm, file, f_inode, i_ino),
		.dev = BPF_CORE_READ(bprm, file, f_inode, i_sb, s_dev),
	};
	if (bpf_map_lookup_elem(&created_files, &fid))
		e->flags |= EXEC_FLAG_DRIFT;
	/* A controlling terminal: what tells an interactive session (kubectl exec -it, ssh)
	 * from a probe's or a script's exec, which have none. */
	if (BPF_CORE_READ(task, signal, tty))
		e->flags |= EXEC_FLAG_TTY;
	e->exe_ino = fid.ino;
	e->exe_dev = fid.dev;
	e->_pad = 0;

	/* The executable as the kernel resolved it: whatever string named it (a symlink, "//", "./", a PATH search). */
	_Static_assert(EXEC_EXE_MAX == PATH_WALK_MAX, "the executable is a walked path");
	walk_path(BPF_CORE_READ(bprm, file, f_path.dentry), BPF_CORE_READ(bprm, file, f_path.mnt), task, e->exe,
		  &e->exe_off, EXEC_EXE_DEPTH);

	if (cfg_enforce)
		e->flags |= enforce(e, &fid, task);

	read_cwd(task, e);

	/* argv: NUL-separated strings between mm->arg_start and mm->arg_end, read one at a time. */
	unsigned long arg = BPF_CORE_READ(task, mm, arg_start);
	unsigned long arg_end = BPF_CORE_READ(task, mm, arg_end);
	__u32 off = e->filename_len;
	__u32 args_len = 0;
	__u32 max_args = cfg_max_args;
	__u32 i;

	for (i = 0; i < EXEC_MAX_ARGS_CAP; i++) {
		if (i >= max_args || arg >= arg_end) {
			break;
		}
		if (args_len >= EXEC_ARGS_MAX) {
			e->flags |= EXEC_FLAG_ARGS_TRUNCATED;
			break;
		}
		__u32 pos = off + args_len;
		if (pos > EXEC_FILENAME_MAX + EXEC_ARGS_MAX)
			break;
		long r = bpf_probe_read_user_str(&e->data[pos], EXEC_ARG_MAX, (const void *)arg);
		if (r <= 0) {
			e->flags |= EXEC_FLAG_ARGS_FAULT;
			break;
		}
		args_len += r;
		if (r == EXEC_ARG_MAX) {
			/* A longer argument: keep its prefix (NUL-terminated) and stop there. */
			e->argc++;
			e->flags |= EXEC_FLAG_ARGS_TRUNCATED;
			break;
		}
		arg += r;
		e->argc++;
	}
	if (i == max_args && arg < arg_end)
		e->flags |= EXEC_FLAG_ARGS_TRUNCATED;
	if (args_len > EXEC_ARGS_MAX + EXEC_ARG_MAX)
		args_len = EXEC_ARGS_MAX + EXEC_ARG_MAX;
	e->args_len = args_len;

	__u64 size = offsetof(struct exec_event, data) + e->filename_len + args_len;
	if (size > sizeof(*e))
		size = sizeof(*e);
	if (emit(e, size))
		count_lost(EVENT_KIND_EXEC);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_exit, struct task_struct *task)
{
	/* do_exit decrements signal->live before this tracepoint: 0 means the whole process is gone. */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;

	struct exit_event e;
	if (!fill_header(&e.hdr, EVENT_KIND_EXIT, task))
		return 0;
	__u32 code = BPF_CORE_READ(task, exit_code);
	e.exit_code = (code >> 8) & 0xff;
	e.signal = code & 0x7f;
	e.core_dumped = (code & 0x80) ? 1 : 0;
	e._pad = 0;
	if (emit(&e, sizeof(e)))
		count_lost(EVENT_KIND_EXIT);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_fork, struct task_struct *parent, struct task_struct *child)
{
	/* A new thread shares its process: only new processes are reported. */
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	if (cfg_fork_clone_parent_only && BPF_CORE_READ(child, real_parent, tgid) == BPF_CORE_READ(parent, tgid))
		return 0;
	struct fork_event e;
	if (!fill_header(&e.hdr, EVENT_KIND_FORK, parent))
		return 0;
	e.child_tgid = BPF_CORE_READ(child, tgid);
	e._pad = 0;
	if (emit(&e, sizeof(e)))
		count_lost(EVENT_KIND_FORK);
	return 0;
}
