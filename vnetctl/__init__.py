"""vnetctl: agentless configuration of KVM hosts' virtual networking over SSH."""

__version__ = "0.1.0"
