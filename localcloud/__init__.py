"""The embedded local cloud: moto plus what moto does not simulate. Never packaged into Lambda."""
