// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Enforcement by denial, where the kernel runs BPF LSM (CONFIG_BPF_LSM and
 * "bpf" in the lsm= boot list): an exec of a denied executable fails with
 * EPERM in bprm_check_security, before the new program exists. Executables
 * are denied by the shared executable policy (common.h): by inode, so no other
 * path, hard link, symlink or rename of the same file gets through, and by the
 * path the kernel resolved, as the exec'ing task's root sees it, so a policy
 * can name a container's binary (a copy is another file at another path:
 * kill_comms and the drift rule are for those). Its own object: on a kernel
 * without BPF LSM it does not load, and the loader says why.
 */
#include "headers/vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#include "common.h"

#define EPERM 1

/* Execs refused (one slot, per CPU). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} deny_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_event);
} deny_scratch SEC(".maps");

SEC("lsm/bprm_check_security")
int BPF_PROG(deny_exec_check, struct linux_binprm *bprm, int ret)
{
	if (ret)
		return ret; /* another LSM refused already */
	/* Within cgroup_path only, when set. ignore_comms does not apply: it quiets
	 * noise, it must not let a process named like a trusted one through. */
	if (cfg_cgroup_filter && bpf_current_task_under_cgroup(&cgroup_filter, 0) != 1)
		return 0;
	struct file_id id = {
		.ino = BPF_CORE_READ(bprm, file, f_inode, i_ino),
		.dev = BPF_CORE_READ(bprm, file, f_inode, i_sb, s_dev),
	};
	__u32 zero = 0;
	struct exec_event *e = bpf_map_lookup_elem(&deny_scratch, &zero);
	if (!e)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	/* bprm->file is the file about to run: a script itself, then (a second call) its interpreter. */
	_Static_assert(EXEC_EXE_MAX == PATH_WALK_MAX, "the executable is a walked path");
	walk_path(BPF_CORE_READ(bprm, file, f_path.dentry), BPF_CORE_READ(bprm, file, f_path.mnt), task, e->exe,
		  &e->exe_off, EXEC_EXE_DEPTH);
	const char *exe = e->exe_off < EXEC_EXE_MAX ? &e->exe[e->exe_off & (EXEC_EXE_MAX - 1)] : NULL;
	__u32 by_file, by_path;
	exec_policy(&id, exe, task, &by_file, &by_path);
	if (!((by_file | by_path) & EXEC_POLICY_DENY))
		return 0;

	__u64 *n = bpf_map_lookup_elem(&deny_count, &zero);
	if (n)
		*n += 1;
	__builtin_memset(&e->hdr, 0, sizeof(e->hdr));
	/* The caller's comm: the exec never happened, so it is still the caller. */
	bpf_get_current_comm(e->hdr.comm, sizeof(e->hdr.comm));
	fill_header_of(&e->hdr, EVENT_KIND_EXEC, task);
	e->flags = EXEC_FLAG_DENIED;
	if (by_file & EXEC_POLICY_DENY)
		e->flags |= EXEC_FLAG_BY_FILE;
	e->argc = 0;
	e->args_len = 0;
	e->cwd_off = EXEC_CWD_MAX; /* not read for a refused exec */
	e->exe_ino = id.ino;
	e->exe_dev = id.dev;
	e->_pad = 0;
	long len = bpf_probe_read_kernel_str(e->data, EXEC_FILENAME_MAX, BPF_CORE_READ(bprm, filename));
	if (len <= 0) {
		e->data[0] = 0;
		len = 1;
	}
	if (len == EXEC_FILENAME_MAX)
		e->flags |= EXEC_FLAG_FILENAME_TRUNCATED;
	e->filename_len = len;
	__u64 size = offsetof(struct exec_event, data) + (__u64)e->filename_len;
	if (size > sizeof(*e))
		size = sizeof(*e);
	if (emit(e, size))
		count_lost(EVENT_KIND_EXEC);
	return -EPERM;
}
