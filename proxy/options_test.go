package proxy

import (
	"testing"

	"switchyard/conf"
)

// TestZeroOptionsAreConfigDefaults: a Listener built from zero options
// behaves as the config file's defaults say.
func TestZeroOptionsAreConfigDefaults(t *testing.T) {
	def := conf.Default()
	got := ListenerOptions{}.withDefaults()
	if got.HandshakeTimeout != def.Limits.HandshakeTimeout || got.IdleTimeout != def.Limits.ClientIdleTimeout ||
		got.MaxPacketSize != int(def.Limits.MaxPacketSize) || got.MaxClientConnections != def.Limits.MaxClientConnections ||
		got.NetReadTimeout != def.Limits.NetReadTimeout {
		t.Errorf("zero ListenerOptions: %+v; config defaults %+v", got, def.Limits)
	}
	if none := (ListenerOptions{IdleTimeout: -1, HandshakeTimeout: -1, NetReadTimeout: -1}).withDefaults(); none.IdleTimeout != 0 || none.HandshakeTimeout != 0 || none.NetReadTimeout != 0 {
		t.Errorf("negative timeouts should mean none: %+v", none)
	}
	var r Routing
	if r.NoFallbackToPrimary == def.Routing.FallbackToPrimary ||
		(r.Reads != "" && r.Reads != def.Routing.Reads) || (r.ReadYourWrites != "" && r.ReadYourWrites != def.Routing.ReadYourWrites) {
		t.Errorf("zero Routing differs from the config defaults %+v", def.Routing)
	}
	var o Options
	if o.DisableMultiplexing == def.Pool.Multiplexing {
		t.Error("zero Options turns multiplexing off; the config's default is on")
	}
}
