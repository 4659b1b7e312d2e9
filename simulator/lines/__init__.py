"""Each protocol's simulator behind one interface (``simulator.registry``): a simulated line
for given station pumps, with a customer control in the station's words."""
