package sessions

// BusIdle reports whether this node has sent (or dropped) everything it
// handed to the bus: after it, a test that checks another node did NOT
// receive something cannot pass only because the message is still on its
// way.
func (s *Service) BusIdle() bool { return s.fwd.idle() }
