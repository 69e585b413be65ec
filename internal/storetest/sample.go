package storetest

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/pentecost/pentecost"
)

// Base is the fixed moment samples are built around. It has millisecond
// precision because a store may keep no more (docs/protocol.md puts
// every time on the wire as Unix milliseconds).
var Base = time.Date(2025, time.March, 9, 10, 30, 15, 123_000_000, time.UTC)

// Sample returns a session with every field set to a non-zero value, so that
// a round trip proves each one is kept. When Session gains a field, Sample
// must set it; TestSampleSetsEveryField in this package and the suite's
// round-trip test fail until it does.
func Sample(id string) *pentecost.Session {
	// A zone other than UTC checks that stores keep the instant, whatever
	// they do with the location.
	plus2 := time.FixedZone("UTC+2", 2*60*60)
	return &pentecost.Session{
		ID:             id,
		OwnerID:        "owner-" + id,
		Status:         pentecost.StatusPaused,
		SourceLanguage: "en",
		QualityTier:    pentecost.TierPremium,
		AudioFormat:    pentecost.FormatOpus,
		PacketMs:       40,
		Broadcast: pentecost.BroadcastState{
			IsActive:        true,
			IsPaused:        true,
			IsMuted:         true,
			Volume:          0.75,
			LastStateChange: Base.Add(2 * time.Minute).UnixMilli(),
		},
		CreatedAt:         Base,
		UpdatedAt:         Base.Add(2 * time.Minute).In(plus2),
		ExpiresAt:         Base.Add(24 * time.Hour),
		SpeakerAttachedAt: Base.Add(time.Minute),
		SpeakerLive:       true,
		SpeakerNode:       "node-a",
		SpeakerEpoch:      3,
		NextSeq:           4242,
		GraceUntil:        Base.Add(2 * time.Minute),
		EndedAt:           Base.Add(3 * time.Minute),
		EndReason:         pentecost.EndSpeakerTimeout,
		Deleted:           true,
	}
}

// Active returns a minimal live session: the optional fields are left zero,
// as they are on a session nobody has attached to yet.
func Active(id string) *pentecost.Session {
	return &pentecost.Session{
		ID:             id,
		OwnerID:        "owner-" + id,
		Status:         pentecost.StatusActive,
		SourceLanguage: "en",
		QualityTier:    pentecost.TierStandard,
		AudioFormat:    pentecost.FormatPCM16,
		Broadcast:      pentecost.BroadcastState{IsActive: true, Volume: 1, LastStateChange: Base.UnixMilli()},
		CreatedAt:      Base,
		UpdatedAt:      Base,
		ExpiresAt:      Base.Add(24 * time.Hour),
	}
}

// Ended returns a session that ended at endedAt.
func Ended(id string, endedAt time.Time) *pentecost.Session {
	s := Active(id)
	s.Status = pentecost.StatusEnded
	s.Broadcast.IsActive = false
	s.EndedAt = endedAt
	s.EndReason = pentecost.EndSpeakerEnded
	s.UpdatedAt = endedAt
	return s
}

// Diff describes how got differs from want, field by field, or returns ""
// when they are the same. Times are compared with Equal (the instant, not the
// location or the monotonic reading). It walks the struct by reflection so a
// field added to Session is compared without anyone remembering to.
func Diff(want, got *pentecost.Session) string {
	if want == nil || got == nil {
		if want == got {
			return ""
		}
		return fmt.Sprintf("want %v, got %v", want, got)
	}
	var diffs []string
	diffValue(&diffs, "", reflect.ValueOf(*want), reflect.ValueOf(*got))
	return strings.Join(diffs, "; ")
}

var timeType = reflect.TypeFor[time.Time]()

func diffValue(diffs *[]string, path string, want, got reflect.Value) {
	switch {
	case want.Type() == timeType:
		w, g := want.Interface().(time.Time), got.Interface().(time.Time)
		if !w.Equal(g) {
			*diffs = append(*diffs, fmt.Sprintf("%s: want %s, got %s", path, w.Format(time.RFC3339Nano), g.Format(time.RFC3339Nano)))
		}
	case want.Kind() == reflect.Struct:
		for i := range want.NumField() {
			name := want.Type().Field(i).Name
			if path != "" {
				name = path + "." + name
			}
			diffValue(diffs, name, want.Field(i), got.Field(i))
		}
	default:
		if !reflect.DeepEqual(want.Interface(), got.Interface()) {
			*diffs = append(*diffs, fmt.Sprintf("%s: want %#v, got %#v", path, want.Interface(), got.Interface()))
		}
	}
}

// zeroFields lists the fields of s left at their zero value.
func zeroFields(s *pentecost.Session) []string {
	var out []string
	var walk func(path string, v reflect.Value)
	walk = func(path string, v reflect.Value) {
		if v.Kind() == reflect.Struct && v.Type() != timeType {
			for i := range v.NumField() {
				name := v.Type().Field(i).Name
				if path != "" {
					name = path + "." + name
				}
				walk(name, v.Field(i))
			}
			return
		}
		if v.IsZero() {
			out = append(out, path)
		}
	}
	walk("", reflect.ValueOf(*s))
	return out
}
