// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Enforcement by denial, where the kernel runs BPF LSM (CONFIG_BPF_LSM and
 * "bpf" in the lsm= boot list): an exec of a denied executable fails with
 * EPERM in bprm_check_security, before the new program exists. Executables
 * are denied by inode, so no other path, hard link, symlink or rename of the
 * same file gets through (a copy is another file: kill_comms and the drift
 * rule are for those). Its own object: on a kernel without BPF LSM it does
 * not load, and the loader says why.
 */
#include "headers/vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#include "common.h"

#define EPERM 1

/* Executables whose exec is refused, by inode; filled by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct file_id);
	__type(value, __u8);
} deny_exec SEC(".maps");

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
	struct file_id id = {
		.ino = BPF_CORE_READ(bprm, file, f_inode, i_ino),
		.dev = BPF_CORE_READ(bprm, file, f_inode, i_sb, s_dev),
	};
	if (!bpf_map_lookup_elem(&deny_exec, &id))
		return 0;
	/* Within cgroup_path only, when set. ignore_comms does not apply: it quiets
	 * noise, it must not let a process named like a trusted one through. */
	if (cfg_cgroup_filter && bpf_current_task_under_cgroup(&cgroup_filter, 0) != 1)
		return 0;

	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&deny_count, &zero);
	if (n)
		*n += 1;
	struct exec_event *e = bpf_map_lookup_elem(&deny_scratch, &zero);
	if (!e)
		return -EPERM;
	__builtin_memset(&e->hdr, 0, sizeof(e->hdr));
	/* The caller's comm: the exec never happened, so it is still the caller. */
	bpf_get_current_comm(e->hdr.comm, sizeof(e->hdr.comm));
	fill_header_of(&e->hdr, EVENT_KIND_EXEC, (struct task_struct *)bpf_get_current_task());
	e->flags = EXEC_FLAG_DENIED;
	e->argc = 0;
	e->args_len = 0;
	e->cwd_off = EXEC_CWD_MAX; /* not read for a refused exec */
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
