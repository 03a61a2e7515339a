/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The file filters, shared by the file object (syscall tracepoints) and the
 * kprobe object's security_file_open hook: the loader creates them once and
 * hands the same maps to both. Include after common.h.
 */
#ifndef K8SSEC_FILE_FILTER_H
#define K8SSEC_FILE_FILTER_H

/*
 * Prefixes of interest. The loader puts each prefix twice: "<dir>/" (what
 * is below it) and "<dir>\0" (the directory itself), so that /etc does not
 * match /etcd. A lookup uses the whole path, NUL included.
 */
struct path_key {
	__u32 prefixlen; /* in bits */
	char data[FILE_PATH_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct path_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} file_prefixes SEC(".maps");

/*
 * Inodes of the regular files the prefixes name exactly (the loader stats
 * them): an open of one through another name (a hard link) is reported too.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct file_id);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} file_inodes SEC(".maps");

#endif /* K8SSEC_FILE_FILTER_H */
