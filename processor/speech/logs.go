package speech

import (
	"fmt"

	"github.com/pentecost/pentecost/processor"
)

// throttle is the pipeline's log of stage failures, one line per kind per
// interval. Kinds that name a session are scoped by the session's ID so
// that Pipeline.leave can drop them when the session ends.
type throttle struct {
	logf func(format string, args ...any)
	t    *processor.Throttle
}

// log logs the line unless a line of the same kind in the same scope went
// out within the interval. scope is a session ID, or "" for kinds shared by
// all sessions.
func (t *throttle) log(scope, kind, format string, args ...any) {
	ok, n := t.t.Allow(scope, kind)
	if !ok {
		return
	}
	line := fmt.Sprintf(format, args...)
	if n > 0 {
		line += fmt.Sprintf(" (%d more like this since the last report)", n)
	}
	t.logf("%s", line)
}
