package auth

import (
	"context"
	"testing"
)

func TestRootHasEveryCapability(t *testing.T) {
	c := NewRoot()
	for cap := Capability(0); cap <= CAP_LAST_CAP; cap++ {
		if !c.HasCapability(cap) {
			t.Errorf("root lacks capability %d", cap)
		}
	}
	if c.HasCapability(CAP_LAST_CAP + 1) {
		t.Error("root holds a capability past CAP_LAST_CAP")
	}
}

func TestGroupsSortedAndSearched(t *testing.T) {
	c := NewUser(1000, 100, []GID{27, 5, 27, 44})
	if got := c.ExtraGIDs; len(got) != 3 || got[0] != 5 || got[2] != 44 {
		t.Fatalf("ExtraGIDs = %v, want [5 27 44]", got)
	}
	for _, g := range []GID{100, 5, 27, 44} {
		if !c.InGroup(g) {
			t.Errorf("InGroup(%d) = false", g)
		}
	}
	if c.InGroup(6) || c.HasCapability(CAP_CHOWN) {
		t.Error("unprivileged user in a foreign group or holding a capability")
	}
	f := c.Fork()
	f.ExtraGIDs[0] = 99
	if c.ExtraGIDs[0] != 5 {
		t.Error("Fork shares the groups slice")
	}
}

func TestContextCarriesCredentials(t *testing.T) {
	c := NewRoot()
	if got := CredentialsFromContext(ContextWithCredentials(context.Background(), c)); got != c {
		t.Fatal("credentials lost through the context")
	}
	if CredentialsFromContext(context.Background()) != nil {
		t.Fatal("credentials from an empty context")
	}
}
