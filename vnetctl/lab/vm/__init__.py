"""Virtual machines in the lab: each lab host's own libvirtd (vnetctl.lab.vm.libvirtd),
the tiny guest it boots (vnetctl.lab.vm.image, .guest_init) and the API tests drive
guests with (vnetctl.lab.vm.guests)."""
