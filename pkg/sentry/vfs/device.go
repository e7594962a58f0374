package vfs

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// DeviceKind is a character or block device.
type DeviceKind uint32

// Device kinds.
const (
	CharDevice DeviceKind = iota
	BlockDevice
)

// Device is a device driver: what opening a device node gives.
type Device interface {
	Open(ctx context.Context, vd VirtualDentry, flags uint32) (FileDescriptionImpl, error)
}

type deviceKey struct {
	kind         DeviceKind
	major, minor uint32
}

// deviceRegistry maps device numbers to drivers; nodes of any filesystem
// open through it.
type deviceRegistry struct {
	mu      sync.RWMutex
	devices map[deviceKey]Device
}

// RegisterDevice installs the driver for (kind, major, minor).
func (vfs *VirtualFilesystem) RegisterDevice(kind DeviceKind, major, minor uint32, dev Device) error {
	vfs.devs.mu.Lock()
	defer vfs.devs.mu.Unlock()
	if vfs.devs.devices == nil {
		vfs.devs.devices = make(map[deviceKey]Device)
	}
	k := deviceKey{kind, major, minor}
	if _, ok := vfs.devs.devices[k]; ok {
		return fmt.Errorf("device %d:%d already registered", major, minor)
	}
	vfs.devs.devices[k] = dev
	return nil
}

// OpenDeviceSpecialFile opens the device a node names; ENXIO if no driver
// is registered for it (open(2)).
func (vfs *VirtualFilesystem) OpenDeviceSpecialFile(ctx context.Context, vd VirtualDentry, kind DeviceKind, major, minor, flags uint32) (FileDescriptionImpl, error) {
	vfs.devs.mu.RLock()
	dev, ok := vfs.devs.devices[deviceKey{kind, major, minor}]
	vfs.devs.mu.RUnlock()
	if !ok {
		return nil, unix.ENXIO
	}
	return dev.Open(ctx, vd, flags)
}

// Device returns the driver registered for (kind, major, minor), so that
// the package that registered it can reach its own driver for this VFS.
func (vfs *VirtualFilesystem) Device(kind DeviceKind, major, minor uint32) (Device, bool) {
	vfs.devs.mu.RLock()
	defer vfs.devs.mu.RUnlock()
	dev, ok := vfs.devs.devices[deviceKey{kind, major, minor}]
	return dev, ok
}
