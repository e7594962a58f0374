package tcp

import "carapace.dev/carapace/pkg/tcpip/header"

// SACK (RFC 2018): the receiver reports the out-of-order ranges it holds;
// the sender keeps them as a scoreboard and, in loss recovery,
// retransmits only the holes between them (after RFC 6675's idea of
// "next segment to retransmit", kept to what NewReno recovery needs).

// sackRange is a SACKed range [start, end).
type sackRange struct{ start, end uint32 }

// sackBlocks fills o with up to header.TCPMaxSACKBlocks ranges from the
// out-of-order queue, the one holding the latest arrival first (RFC 2018
// §4).
func (e *endpoint) sackBlocks(o *header.TCPOptions) {
	var ranges [maxOutOfOrderSegments]sackRange
	n := 0
	for _, s := range e.ooo {
		end := s.seq + uint32(len(s.payload))
		if n > 0 && seqLEQ(s.seq, ranges[n-1].end) {
			if seqGT(end, ranges[n-1].end) {
				ranges[n-1].end = end
			}
			continue
		}
		ranges[n] = sackRange{s.seq, end}
		n++
	}
	first := -1
	for i := 0; i < n; i++ {
		if inWindow(e.lastOOOSeq, ranges[i].start, ranges[i].end-ranges[i].start) {
			first = i
		}
	}
	add := func(r sackRange) {
		if o.NumSACKBlocks < header.TCPMaxSACKBlocks {
			o.SACKBlocks[o.NumSACKBlocks] = header.SACKBlock{Start: r.start, End: r.end}
			o.NumSACKBlocks++
		}
	}
	if first >= 0 {
		add(ranges[first])
	}
	for i := 0; i < n; i++ {
		if i != first {
			add(ranges[i])
		}
	}
}

// updateScoreboard merges the peer's SACK blocks, ignoring any that are
// not within [SND.UNA, SND.MAX] (stale or forged).
func (e *endpoint) updateScoreboard(o *header.TCPOptions) {
	for i := 0; i < o.NumSACKBlocks; i++ {
		b := o.SACKBlocks[i]
		if !seqLT(b.Start, b.End) || seqLT(b.Start, e.sndUna) || seqGT(b.End, e.sndMax) {
			continue
		}
		e.addSACKed(sackRange{b.Start, b.End})
	}
}

func (e *endpoint) addSACKed(r sackRange) {
	out := e.sacked[:0:0]
	placed := false
	for _, s := range e.sacked {
		switch {
		case seqLT(s.end, r.start):
			out = append(out, s)
		case seqLT(r.end, s.start):
			if !placed {
				out = append(out, r)
				placed = true
			}
			out = append(out, s)
		default: // overlapping or adjacent: merge into r
			if seqLT(s.start, r.start) {
				r.start = s.start
			}
			if seqGT(s.end, r.end) {
				r.end = s.end
			}
		}
	}
	if !placed {
		out = append(out, r)
	}
	if len(out) > maxOutOfOrderSegments {
		out = out[:maxOutOfOrderSegments]
	}
	e.sacked = out
}

// trimScoreboard drops ranges now below SND.UNA.
func (e *endpoint) trimScoreboard() {
	i := 0
	for i < len(e.sacked) && seqLEQ(e.sacked[i].end, e.sndUna) {
		i++
	}
	e.sacked = e.sacked[i:]
	if len(e.sacked) > 0 && seqLT(e.sacked[0].start, e.sndUna) {
		e.sacked[0].start = e.sndUna
	}
}

// nextHole returns the first unSACKed, not yet retransmitted range at or
// after from that lies below the highest SACKed byte, at most one MSS.
func (e *endpoint) nextHole(from uint32) (uint32, int, bool) {
	if seqLT(from, e.sndUna) {
		from = e.sndUna
	}
	for _, s := range e.sacked {
		if seqLT(from, s.start) {
			n := min(int(s.start-from), e.mss, int(e.dataEnd()-from))
			if n <= 0 {
				return 0, 0, false
			}
			return from, n, true
		}
		if seqLT(from, s.end) {
			from = s.end
		}
	}
	return 0, 0, false
}

// retransmitHoles resends holes the scoreboard shows, as far as the
// congestion window allows, during fast recovery.
func (e *endpoint) retransmitHoles() {
	budget := e.cwnd - e.pipe()
	for budget > 0 {
		seq, n, ok := e.nextHole(e.rtxNext)
		if !ok {
			return
		}
		e.sendSegment(seq, n)
		e.rtxNext = seq + uint32(n)
		budget -= n
	}
}

// pipe estimates bytes in flight: outstanding minus what the peer has
// SACKed (RFC 6675 §4, simplified).
func (e *endpoint) pipe() int {
	p := e.inFlight()
	for _, s := range e.sacked {
		p -= int(s.end - s.start)
	}
	return max(p, 0)
}
