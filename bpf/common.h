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
