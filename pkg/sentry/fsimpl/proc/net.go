package proc

import (
	"context"

	"golang.org/x/sys/unix"
)

// procNetSource is implemented by the socket families that contribute
// files to /proc/net (netstack for AF_INET and AF_INET6, the AF_UNIX
// provider): ProcNet returns a file's whole content, ok false for a name
// the family does not own.
type procNetSource interface {
	ProcNet(name string) (content []byte, ok bool)
}

// procNetFiles are /proc/net's files and the address family whose
// provider writes each.
var procNetFiles = []struct {
	name   string
	family int
}{
	{"dev", unix.AF_INET},
	{"if_inet6", unix.AF_INET6},
	{"route", unix.AF_INET},
	{"snmp", unix.AF_INET},
	{"tcp", unix.AF_INET},
	{"tcp6", unix.AF_INET6},
	{"udp", unix.AF_INET},
	{"udp6", unix.AF_INET6},
	{"unix", unix.AF_UNIX},
}

// netDir is /proc/[pid]/net and /proc/[pid]/task/[tid]/net, which
// /proc/net names through the self link: the files of the task's network
// namespace. The sandbox has one network stack, so every task's
// directory shows the same content.
func (f *filesystem) netDir(who owner) *dirNode {
	d := f.newDir(taskIno(who.tid, kindNetDir, 0), who, 0o555, nil)
	entries := f.netFiles(func(i int, name string, gen func(context.Context) ([]byte, error)) child {
		return child{name, f.newFile(taskIno(who.tid, kindNetDir, int32(i+1)), who, 0o444, gen)}
	})
	d.list = func(context.Context) []child { return entries }
	return d
}

// netFiles returns the files of a net directory, made with file (the
// caller's constructor, which numbers the inodes by position i). A
// family with no provider, or one that does not write /proc/net, gives
// an empty file.
func (f *filesystem) netFiles(file func(i int, name string, gen func(context.Context) ([]byte, error)) child) []child {
	out := make([]child, 0, len(procNetFiles))
	for i, e := range procNetFiles {
		out = append(out, file(i, e.name, func(context.Context) ([]byte, error) {
			p, err := f.k.SocketProvider(e.family)
			if err != nil {
				return nil, nil
			}
			src, ok := p.(procNetSource)
			if !ok {
				return nil, nil
			}
			b, _ := src.ProcNet(e.name)
			return b, nil
		}))
	}
	return out
}
