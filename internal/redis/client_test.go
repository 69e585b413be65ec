package redis

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestURLs(t *testing.T) {
	for _, tc := range []struct {
		url, where, err string
	}{
		{"redis://127.0.0.1:1/0", "127.0.0.1:1", ""},
		{"rediss://user:secret@redis.example:6380/2", "redis.example:6380", ""},
		{"redis+sentinel://127.0.0.1:26379/0?master_name=mymaster&addr=127.0.0.1:26380", `master "mymaster" of the sentinels at 127.0.0.1:26379,127.0.0.1:26380`, ""},
		{"rediss+sentinel://u:secret@s1.example:26379?master_name=main&password=x", `master "main" of the sentinels at s1.example:26379`, ""},
		{"redis+sentinel://127.0.0.1:26379/0", "", "needs master_name"},
		{"redis+sentinel://127.0.0.1:26379/0?master_name=m&nonsense=1", "", "parse sentinel url"},
		{"http://127.0.0.1:6379", "", "parse url"},
		// A malformed URL's error never repeats the URL and its password.
		{"redis://user:s3cret@host:bad/0", "", "invalid port"},
		{"redis+sentinel://user:s3cret@host:bad/0?master_name=m", "", "invalid port"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			rdb, where, err := newClient(tc.url)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("error %v, want %q and no password", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer rdb.Close()
			if where != tc.where || strings.Contains(where, "secret") {
				t.Fatalf("where %q, want %q", where, tc.where)
			}
			o := rdb.Options()
			if o.ReadTimeout != time.Second || o.DialTimeout != 2*time.Second || o.MaxRetries != 1 || !o.ContextTimeoutEnabled {
				t.Fatalf("options %+v", o)
			}
		})
	}
}

func TestOpenRefusesAnUnreachableRedis(t *testing.T) {
	_, err := Open(context.Background(), "redis://127.0.0.1:1/0", "")
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1 does not answer") {
		t.Fatalf("Open: %v", err)
	}
}
