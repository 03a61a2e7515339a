/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What every object shares: the ring buffer, the loss counters and the
 * filter maps (the loader creates them once and hands the same maps to every
 * object: MapReplacements), and the header every record starts with.
 * Include after vmlinux.h, the libbpf headers and events.h.
 */
#ifndef K8SSEC_COMMON_H
#define K8SSEC_COMMON_H

/* Set by the loader before load (spec.Variables). */
const volatile __u8 cfg_cgroup_filter = 0;  /* 1: only tasks under the cgroup in cgroup_filter[0] */

/* The loader overrides max_entries with ring_buffer_size. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

/* Ring-buffer output failures, indexed by enum event_kind. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EVENT_KIND_MAX);
	__type(key, __u32);
	__type(value, __u64);
} lost_events SEC(".maps");

/* comm (NUL-padded to 16 bytes) -> 1: events of these tasks are dropped in the kernel. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, char[TASK_COMM_LEN]);
	__type(value, __u8);
} ignore_comms SEC(".maps");

/* One cgroup v2 directory; with cfg_cgroup_filter only tasks at or below it report. */
struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cgroup_filter SEC(".maps");

/*
 * Files created or truncated for writing since the probe started, by inode
 * (the file object fills it; the process object looks an exec's executable up
 * in it): executing one is drift, a binary that was not in the image.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct file_id);
	__type(value, __u8);
} created_files SEC(".maps");

/*
 * A path as the kernel resolved it: (dentry, vfsmount) walked up to the task's
 * root (fs->root: its chroot, or its mount namespace's root, so that a
 * container's file is named as the container sees it), each name written in
 * front of the last, from the end of buf (PATH_WALK_MAX bytes, NUL-terminated,
 * followed by PATH_WALK_NAME_MAX bytes of slack: the verifier does not see
 * that a name's read ends inside buf).
 * Mount points are crossed through struct mount. Returns with *off at the
 * path's first byte, or at PATH_WALK_MAX when it is unknown: deeper than depth
 * directories, longer than the buffer, a name of PATH_WALK_NAME_MAX bytes or
 * more, or unreadable. Bounded, so the verifier accepts it.
 *
 * buf and *off are map memory: the write position lives there between
 * iterations, not in a register, so the verifier sees the same state whichever
 * way an iteration went (a name, or a mount crossed), and the loop verifies in
 * linear rather than exponential time.
 */
#define PATH_WALK_MAX 256      /* bytes of a walked path, NUL included */
#define PATH_WALK_NAME_MAX 128 /* bytes of one name kept (longer: the path is unknown) */

static __always_inline void walk_path(struct dentry *d, struct vfsmount *vmnt, struct task_struct *task,
				      char *buf, __u32 *off, const int depth)
{
	struct mount *mnt = container_of(vmnt, struct mount, mnt);
	struct dentry *root_dentry = BPF_CORE_READ(task, fs, root.dentry);
	struct vfsmount *root_mnt = BPF_CORE_READ(task, fs, root.mnt);

	buf[PATH_WALK_MAX - 1] = 0;
	*off = PATH_WALK_MAX - 1;
	for (int i = 0; i < depth; i++) {
		struct dentry *mnt_root = BPF_CORE_READ(vmnt, mnt_root);
		struct dentry *parent = BPF_CORE_READ(d, d_parent);
		bool at_root = d == root_dentry && vmnt == root_mnt;
		/* A dentry of no directory (a memfd's "memfd:name", a pipe's): its own name, as d_path gives it. */
		bool detached = d == parent && d != mnt_root && !at_root;
		if (!detached && (at_root || d == mnt_root || d == parent)) {
			struct mount *up = BPF_CORE_READ(mnt, mnt_parent);
			if (at_root || d != mnt_root || mnt == up) { /* the task's root, or the namespace's: done */
				if (*off == PATH_WALK_MAX - 1) { /* the root itself */
					buf[PATH_WALK_MAX - 2] = '/';
					*off = PATH_WALK_MAX - 2;
				}
				return;
			}
			d = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = up;
			vmnt = __builtin_preserve_access_index(&up->mnt);
			continue;
		}
		struct qstr name = BPF_CORE_READ(d, d_name);
		__u32 len = name.len;
		__u32 pos = *off;
		if (len == 0 || len >= PATH_WALK_NAME_MAX || pos >= PATH_WALK_MAX || len + 1 > pos)
			break;
		pos -= len;
		if (bpf_probe_read_kernel(&buf[pos & (PATH_WALK_MAX - 1)], len & (PATH_WALK_NAME_MAX - 1), name.name))
			break;
		pos -= 1;
		buf[pos & (PATH_WALK_MAX - 1)] = '/';
		*off = pos;
		if (detached)
			return;
		d = parent;
	}
	*off = PATH_WALK_MAX; /* too deep, too long, or unreadable */
}

/*
 * Executable policy (enforcement), shared by the exec program (kill) and the
 * BPF LSM program (deny), filled by the loader before either is attached.
 * exec_policy_files names executables by file identity (inode and device,
 * taken in the host's mount namespace when the policy loads): every path to
 * the same file, hard links included, is the file. exec_policy_paths names
 * them by the path the kernel resolved (walk_path, up to the task's root):
 * what a file replaced at the same path still matches. A path entry's value
 * holds EXEC_POLICY_* bits for tasks whose root is the host's root, and the
 * same bits << EXEC_POLICY_CONTAINER_SHIFT for tasks under another root (a
 * container's path, as the container sees it).
 */
#define EXEC_POLICY_KILL (1 << 0)
#define EXEC_POLICY_DENY (1 << 1)
#define EXEC_POLICY_CONTAINER_SHIFT 4
#define EXEC_POLICY_MAX_ENTRIES 16384

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EXEC_POLICY_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* 4 MiB of keys when full: allocated as used */
	__type(key, char[PATH_WALK_MAX]);
	__type(value, __u8);
} exec_policy_paths SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EXEC_POLICY_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct file_id);
	__type(value, __u8);
} exec_policy_files SEC(".maps");

/* Scratch for an exec_policy_paths key: a resolved path moved to the key's start, NUL padded. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, char[PATH_WALK_MAX]);
} exec_policy_key SEC(".maps");

/* Set by the loader: the host's root directory (stat of /proc/1/root), and
 * the agent's own executable, which no policy may kill or deny. */
const volatile __u64 cfg_host_root_ino = 0;
const volatile __u32 cfg_host_root_dev = 0;
const volatile __u64 cfg_self_exe_ino = 0;
const volatile __u32 cfg_self_exe_dev = 0;

static __always_inline __u32 dev_of(struct inode *inode)
{
	return BPF_CORE_READ(inode, i_sb, s_dev);
}

/* The task's root is the host's: a host process (or one chrooted to the host's /). */
static __always_inline bool task_root_is_host(struct task_struct *task)
{
	struct inode *root = BPF_CORE_READ(task, fs, root.dentry, d_inode);
	return BPF_CORE_READ(root, i_ino) == cfg_host_root_ino && dev_of(root) == cfg_host_root_dev;
}

/*
 * What the policy says of an executable, for task: the EXEC_POLICY_* bits its
 * file identity has (*by_file) and those its path has (*by_path; path is a
 * NUL-terminated string in map memory, or NULL when unknown).
 */
static __always_inline void exec_policy(struct file_id *fid, const char *path, struct task_struct *task,
					__u32 *by_file, __u32 *by_path)
{
	*by_file = 0;
	*by_path = 0;
	if (fid->ino == cfg_self_exe_ino && fid->dev == cfg_self_exe_dev)
		return; /* never the agent itself */
	__u8 *v = bpf_map_lookup_elem(&exec_policy_files, fid);
	if (v)
		*by_file = *v;
	if (!path)
		return;
	__u32 zero = 0;
	char *key = bpf_map_lookup_elem(&exec_policy_key, &zero);
	if (!key)
		return;
	__builtin_memset(key, 0, PATH_WALK_MAX);
	if (bpf_probe_read_kernel_str(key, PATH_WALK_MAX, path) <= 0)
		return;
	v = bpf_map_lookup_elem(&exec_policy_paths, key);
	if (v)
		*by_path = task_root_is_host(task) ? (*v & 0xf) : (*v >> EXEC_POLICY_CONTAINER_SHIFT);
}

/*
 * Records go to the ring without waking the reader until cfg_wakeup_bytes are
 * pending (set by the loader, a fraction of the ring; 0: the kernel's default
 * of waking a reader that had caught up, which at storm rates is a wakeup per
 * record: an irq_work in the traced thread and a syscall and context switch
 * in the reader, each). Only the record that crosses the mark wakes the
 * reader; the reader also polls, so a lone record waits at most its poll
 * interval, and a wakeup lost to a race between CPUs costs no more than that.
 */
const volatile __u64 cfg_wakeup_bytes = 0;

static __always_inline long emit(void *data, __u64 size)
{
	__u64 flags = 0;
	if (cfg_wakeup_bytes) {
		__u64 pending = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
		flags = pending < cfg_wakeup_bytes && pending + size >= cfg_wakeup_bytes ?
			BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	}
	return bpf_ringbuf_output(&events, data, size, flags);
}

static __always_inline void count_lost(__u32 kind)
{
	__u64 *n = bpf_map_lookup_elem(&lost_events, &kind);
	if (n)
		*n += 1; /* per-CPU slot: no atomics needed */
}

/* Fills the header from task, with no filter. */
static __always_inline void fill_header_of(struct event_header *h, __u32 kind, struct task_struct *task)
{
	__u64 id = bpf_get_current_pid_tgid();
	h->kind = kind;
	h->pid = (__u32)id;
	h->tgid = id >> 32;
	h->ppid = BPF_CORE_READ(task, real_parent, tgid);
	h->uid = BPF_CORE_READ(task, cred, uid.val);
	h->euid = BPF_CORE_READ(task, cred, euid.val);
	h->gid = BPF_CORE_READ(task, cred, gid.val);
	h->egid = BPF_CORE_READ(task, cred, egid.val);
	h->mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);

	struct pid *tp = BPF_CORE_READ(task, thread_pid);
	if (tp) {
		unsigned int level = BPF_CORE_READ(tp, level);
		struct upid up = {};
		bpf_core_read(&up, sizeof(up), &tp->numbers[level & 31]);
		if (up.ns)
			h->pid_ns = BPF_CORE_READ(up.ns, ns.inum);
	}
	h->cgroup_id = bpf_get_current_cgroup_id();
	h->ktime = bpf_ktime_get_boot_ns();
	h->start_time = BPF_CORE_READ(task, group_leader, start_boottime);
}

/* Fills the header; returns false when the task is filtered out. */
static __always_inline bool fill_header(struct event_header *h, __u32 kind, struct task_struct *task)
{
	__builtin_memset(h, 0, sizeof(*h));
	bpf_get_current_comm(h->comm, sizeof(h->comm));
	if (bpf_map_lookup_elem(&ignore_comms, h->comm))
		return false;
	if (cfg_cgroup_filter && bpf_current_task_under_cgroup(&cgroup_filter, 0) != 1)
		return false;
	fill_header_of(h, kind, task);
	return true;
}

#endif /* K8SSEC_COMMON_H */
