package bolt

import (
	"encoding/json"
	"fmt"

	"github.com/pentecost/pentecost"
)

// Records are the Session's own JSON: readable with `bbolt get` when
// debugging, and the tags already exist.

func encode(s *pentecost.Session) ([]byte, error) {
	data, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode session %s: %w", s.ID, err)
	}
	return data, nil
}

// decode reads the record stored under id. The bytes belong to bbolt's
// mapping and are only valid inside the transaction; json copies what it
// keeps.
func decode(id string, data []byte) (*pentecost.Session, error) {
	var s pentecost.Session
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("undecodable record for session %s (%d bytes): %w", id, len(data), err)
	}
	if s.ID != id {
		return nil, fmt.Errorf("the record stored as session %s names session %q", id, s.ID)
	}
	return &s, nil
}
