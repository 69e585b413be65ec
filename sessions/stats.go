package sessions

// Stats is a snapshot of this node's live sessions, for metrics.
type Stats struct {
	Sessions           int
	SpeakerConnections int
	Listeners          int
	ListenersByLang    map[string]int
}

// Stats counts live sessions, speakers and listeners from the live
// connections themselves, so the figures cannot drift.
func (s *Service) Stats() Stats {
	lives := s.held()
	st := Stats{Sessions: len(lives), ListenersByLang: map[string]int{}}
	for _, l := range lives {
		total, byLang := l.room.Distribution()
		st.Listeners += total
		for lang, n := range byLang {
			st.ListenersByLang[lang] += n
		}
		l.mu.Lock()
		st.SpeakerConnections += len(l.speakers)
		l.mu.Unlock()
	}
	return st
}
