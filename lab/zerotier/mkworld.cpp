// clan-coord lab: writes a private ZeroTier planet (a "world") whose only root is a lab machine,
// so the lab's nodes never look for ZeroTier's public roots (the lab's hard network rule). The
// format and signing follow ZeroTier's own generator (attic/world/mkworld.cpp, which hard-codes
// the public roots); this one takes the root from its arguments and signs with a fresh key:
// lab nodes get the planet before their first start, so it never needs updating.
//
// usage: clan-coord-mkworld <out-file> <world-id> <timestamp-ms> <root identity.public> <ip/port>...
// Built by the lab against the vendored ZeroTier sources (lab/src/zerotier.rs).

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <node/C25519.hpp>
#include <node/Constants.hpp>
#include <node/Identity.hpp>
#include <node/InetAddress.hpp>
#include <node/World.hpp>
#include <osdep/OSUtils.hpp>

using namespace ZeroTier;

static int fail(const char *what, const char *detail)
{
	fprintf(stderr, "clan-coord-mkworld: %s: %s\n", what, detail);
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 6)
		return fail("usage", "<out-file> <world-id> <timestamp-ms> <root identity.public> <ip/port>...");
	char *end = nullptr;
	const uint64_t id = strtoull(argv[2], &end, 10);
	if (*end || id == 0)
		return fail("world id is not a positive decimal number", argv[2]);
	const uint64_t ts = strtoull(argv[3], &end, 10);
	if (*end || ts == 0)
		return fail("timestamp is not a positive decimal number of milliseconds", argv[3]);
	std::string pub;
	if (!OSUtils::readFile(argv[4], pub))
		return fail("cannot read the root's identity", argv[4]);
	while (!pub.empty() && (pub.back() == '\n' || pub.back() == '\r' || pub.back() == ' '))
		pub.pop_back();
	World::Root root;
	if (!root.identity.fromString(pub.c_str()) || !root.identity.locallyValidate())
		return fail("not a valid ZeroTier identity", argv[4]);
	if (root.identity.hasPrivate())
		return fail("refusing a secret identity (pass identity.public)", argv[4]);
	for (int i = 5; i < argc; ++i) {
		InetAddress a(argv[i]);
		if (!a || a.port() == 0)
			return fail("not an ip/port endpoint", argv[i]);
		root.stableEndpoints.push_back(a);
	}
	std::vector<World::Root> roots;
	roots.push_back(root);
	const C25519::Pair signer(C25519::generate());
	const World w = World::make(World::TYPE_PLANET, id, ts, signer.pub, roots, signer);
	Buffer<ZT_WORLD_MAX_SERIALIZED_LENGTH> out;
	w.serialize(out, false);
	World check;
	if (check.deserialize(out, 0) != out.size() || !(check == w))
		return fail("internal", "the world does not read back as written");
	if (!OSUtils::writeFile(argv[1], std::string((const char *)out.data(), out.size())))
		return fail("cannot write", argv[1]);
	char addr[11];
	fprintf(stderr, "clan-coord-mkworld: planet %s: world %llu, root %s at %d endpoint(s), %u bytes\n", argv[1],
		(unsigned long long)id, root.identity.address().toString(addr), argc - 5, out.size());
	return 0;
}
