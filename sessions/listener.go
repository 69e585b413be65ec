package sessions

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/pentecost/pentecost"
	"github.com/pentecost/pentecost/hub"
	"github.com/pentecost/pentecost/protocol"
	"github.com/pentecost/pentecost/sessionid"
)

// JoinParams are a listener's choices.
type JoinParams struct {
	SessionID      string
	TargetLanguage string
	Base64         bool
	// PreviousConnectionID names the connection a refreshing listener
	// replaces; only then may the join exceed the cap.
	PreviousConnectionID string
	// InheritEncoding takes the previous connection's encoding instead of
	// Base64 when PreviousConnectionID names a live listener.
	InheritEncoding bool
	// Codec is the codec asked for (empty: pcm16); InheritCodec takes the
	// previous connection's instead, as InheritEncoding does.
	Codec        string
	InheritCodec bool
}

// JoinInfo is what a listener is told on joining.
type JoinInfo struct {
	Session          *pentecost.Session
	TargetLanguage   string
	ListenerCount    int
	SpeakerConnected bool
	Translated       bool
	Captions         bool   // a processor serves the language: its captions arrive
	Refreshed        bool   // PreviousConnectionID named a live listener
	Base64           bool   // the encoding the listener receives
	Codec            string // the codec the listener receives
	Transcoding      bool   // this node converts between codecs
}

// Listener is a listener connection's hold on its session.
type Listener struct {
	l      *liveSession
	conn   Conn
	base64 bool
	codec  string

	mu   sync.Mutex
	lang string
}

// SessionID is the session listened to.
func (h *Listener) SessionID() string { return h.l.id }

// Language is the listener's current target language.
func (h *Listener) Language() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lang
}

// CheckJoin validates join parameters without touching any state.
func CheckJoin(p *JoinParams) error {
	if p.SessionID == "" {
		return pentecost.Missing("sessionId")
	}
	if err := sessionid.Check(p.SessionID); err != nil {
		return err
	}
	lang, err := pentecost.CheckTargetLanguage("targetLanguage", p.TargetLanguage)
	if err != nil {
		return err
	}
	p.TargetLanguage = lang
	return nil
}

// JoinListener adds c as a listener. Listeners may join before the speaker
// has attached; they wait for the audio.
func (s *Service) JoinListener(ctx context.Context, c Conn, p JoinParams) (*Listener, JoinInfo, error) {
	started := s.clock.Now()
	if err := CheckJoin(&p); err != nil {
		return nil, JoinInfo{}, err
	}
	l, err := s.open(ctx, p.SessionID)
	if err != nil {
		return nil, JoinInfo{}, err
	}
	h := &Listener{l: l, conn: c, lang: p.TargetLanguage}
	if l.room.Count() == 0 || !slices.Contains(l.room.Languages(), p.TargetLanguage) {
		// A processor for the language is found before the listener is in,
		// so its sessionJoined can say whether it hears a translation.
		l.rebalanceIfNeeded(p.TargetLanguage)
	}
	l.mu.Lock()
	if l.ended {
		l.mu.Unlock()
		return nil, JoinInfo{}, pentecost.NotFound(p.SessionID)
	}
	prev := l.listeners[p.PreviousConnectionID]
	refreshed := p.PreviousConnectionID != "" && prev != nil && p.PreviousConnectionID != c.ID()
	base64 := p.Base64
	if refreshed && p.InheritEncoding {
		base64 = prev.base64
	}
	h.base64 = base64
	codec := p.Codec
	if refreshed && p.InheritCodec {
		codec = prev.codec
	}
	h.codec = l.codecFor(codec)
	// The cap counts every node's listeners, atomically in the presence;
	// the room here then takes the listener without a cap of its own.
	adm, err := s.presence.Join(ctx, p.SessionID, p.TargetLanguage, s.cfg.MaxListeners, refreshed)
	if err != nil {
		l.mu.Unlock()
		return nil, JoinInfo{}, unavailable(err)
	}
	if adm.Full {
		l.mu.Unlock()
		l.rebalanceIfNeeded("")
		return nil, JoinInfo{}, pentecost.Errorf(pentecost.ErrSessionFull, "session %s is full", p.SessionID).
			With("maxListeners", s.cfg.MaxListeners).With("sessionId", p.SessionID)
	}
	_, _ = l.room.Join(&hub.Listener{ID: c.ID(), Lang: p.TargetLanguage, Base64: base64, Codec: h.codec, Queue: c.Queue()}, 0, refreshed)
	l.listeners[c.ID()] = h
	info := JoinInfo{
		Session:          l.rec.Clone(),
		TargetLanguage:   p.TargetLanguage,
		ListenerCount:    adm.Total,
		SpeakerConnected: l.speakerConnectedLocked(),
		Translated:       l.translatedLocked(p.TargetLanguage),
		Captions:         l.captionsLocked(p.TargetLanguage),
		Refreshed:        refreshed,
		Base64:           base64,
		Codec:            h.codec,
		Transcoding:      s.transcodes(),
	}
	l.mu.Unlock()
	l.updateAudioSubscription()

	if refreshed {
		s.obs.Refreshed(protocol.RoleListener)
		s.clock.AfterFunc(s.cfg.RefreshOverlap, func() {
			// The old connection's own Leave removes it from the room.
			prev.conn.Close(1000, "connectionRefreshed")
		})
	}
	l.listenersChanged(adm.NewLang)
	s.emit(l.id, evPresence, presenceEvent{NewLang: adm.NewLang})
	s.obs.ListenerJoined(s.clock.Since(started))
	return h, info, nil
}

// translatedLocked reports whether listeners of lang hear something made for
// their language: the source itself, or a processor's stream.
func (l *liveSession) translatedLocked(lang string) bool {
	return lang == *l.sourceLang.Load() || l.room.Served(lang)
}

// captionsLocked reports whether a processor serves lang, so its listeners
// get its captions: translated captions (with its audio, or over the
// source's when it sends captions only), or for the source language the
// transcript of a transcript processor.
func (l *liveSession) captionsLocked(lang string) bool {
	p := l.assign[lang]
	return p != nil && p.eligible(lang, *l.sourceLang.Load())
}

// ChangeLanguage moves the listener to another language.
func (h *Listener) ChangeLanguage(_ context.Context, lang string) (*protocol.LanguageChanged, error) {
	lang, err := pentecost.CheckTargetLanguage("targetLanguage", lang)
	if err != nil {
		return nil, err
	}
	l := h.l
	l.mu.Lock()
	if l.ended {
		l.mu.Unlock()
		return nil, pentecost.NotFound(l.id)
	}
	old := h.Language()
	newLang, oldEmptied, ok := l.room.ChangeLanguage(h.conn.ID(), lang)
	if !ok {
		l.mu.Unlock()
		return nil, pentecost.NotFound(l.id)
	}
	h.mu.Lock()
	h.lang = lang
	h.mu.Unlock()
	if old != lang {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := l.s.presence.Leave(ctx, l.id, old); err != nil {
			l.s.log.Warn("presence leave failed", "sessionId", l.id, "err", err)
		}
		if adm, err := l.s.presence.Join(ctx, l.id, lang, 0, true); err == nil {
			newLang = adm.NewLang
		}
		cancel()
	}
	l.mu.Unlock()
	if newLang || oldEmptied {
		l.rebalanceIfNeeded("")
	}
	l.mu.Lock()
	msg := &protocol.LanguageChanged{
		Header:         protocol.H(protocol.TypeLanguageChanged, l.s.clock.Now()),
		SessionID:      l.id,
		TargetLanguage: lang,
		SourceLanguage: *l.sourceLang.Load(),
		Translated:     l.translatedLocked(lang),
		Captions:       l.captionsLocked(lang),
	}
	l.mu.Unlock()
	l.listenersChanged(newLang)
	return msg, nil
}

// SetPlayback pauses or resumes audio to this listener only; control
// messages still arrive while paused.
func (h *Listener) SetPlayback(paused bool) *protocol.SessionRef {
	h.conn.Queue().SetAudioPaused(paused)
	typ := protocol.TypePlaybackResumed
	if paused {
		typ = protocol.TypePlaybackPaused
	}
	return &protocol.SessionRef{Header: protocol.H(typ, h.l.s.clock.Now()), SessionID: h.l.id}
}

// Info re-reads what sessionJoined tells, for an idempotent joinSession.
func (h *Listener) Info() JoinInfo {
	l := h.l
	l.mu.Lock()
	defer l.mu.Unlock()
	lang := h.Language()
	count, _ := l.counts()
	return JoinInfo{
		Session:          l.rec.Clone(),
		TargetLanguage:   lang,
		ListenerCount:    count,
		SpeakerConnected: l.speakerConnectedLocked(),
		Translated:       l.translatedLocked(lang),
		Captions:         l.captionsLocked(lang),
		Base64:           h.base64,
		Codec:            h.codec,
		Transcoding:      l.s.transcodes(),
	}
}

// Leave is called when the listener's connection has ended.
func (h *Listener) Leave() {
	l := h.l
	l.mu.Lock()
	if cur := l.listeners[h.conn.ID()]; cur == h {
		delete(l.listeners, h.conn.ID())
	}
	present, emptied := l.room.Leave(h.conn.ID())
	l.mu.Unlock()
	if present {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := l.s.presence.Leave(ctx, l.id, h.Language()); err != nil {
			// The node's periodic re-assertion of its counts repairs this.
			l.s.log.Warn("presence leave failed", "sessionId", l.id, "err", err)
		}
		cancel()
		l.updateAudioSubscription()
		l.s.emit(l.id, evPresence, presenceEvent{})
	}
	if emptied {
		l.rebalanceIfNeeded("")
	}
	if present {
		l.listenersChanged(false)
	}
	l.maybeRelease()
}
