-- binding.lua: checks the Lua C module iotdisco.so on its own, with the plain
-- lua5.4 interpreter (no Prosody): open errors, handle/presence/tick/
-- next_deadline results, argument checks, close (explicit, repeated, by a
-- to-be-closed variable and by the garbage collector). Run it under valgrind
-- to check that the binding leaks nothing.
-- Usage: lua5.4 binding.lua /path/to/iotdisco.so

local path = assert(arg[1], "usage: lua5.4 binding.lua /path/to/iotdisco.so");
local d = assert(package.loadlib(path, "luaopen_iotdisco"))();

local function iq(t, from, id, body)
	return ("<iq type='%s' from='%s' to='r.x' id='%s'>%s</iq>"):format(t, from, id, body);
end
local NS = "urn:xmpp:iot:discovery";

assert(type(d.version()) == "string");
assert(d.OK == 0 and d.NOT_MINE and d.EINVAL and d.ESTORAGE and d.EPANIC and d.DROPPED);

-- open: bad JID and unknown option are (nil, message, code).
local r, err, code = d.open("x y");
assert(r == nil and err:find("JID") and code == d.EINVAL, err);
r, err, code = d.open("r.x", nil, "bogus=1");
assert(r == nil and err:find("bogus") and code == d.EINVAL, err);
assert(not pcall(d.open, "r.x\0y"));

r = assert(d.open("r.x", nil, "disown_timeout_ms=100;identity_name=Test"));
assert(tostring(r):find("open"));

-- Register 200 times (reusing the outbox path), then claim: reply + notification.
local register = iq("set", "t@x/r", "1",
	"<register xmlns='"..NS.."'><str name='KEY' value='k'/></register>");
for i = 1, 200 do
	local c, out, e = r:handle(register, i);
	assert(c == d.OK and #out == 1 and e == nil);
end
local c, out = r:handle(iq("set", "o@x/r", "2",
	"<mine xmlns='"..NS.."'><str name='KEY' value='k'/></mine>"), 300);
assert(c == d.OK and #out == 2, out[1]);
assert(out[1]:find("<claimed") and out[2]:find("type='set'"), out[2]);

-- A foreign IQ is NOT_MINE with nothing to send; an unaddressable one DROPPED.
c, out = r:handle(iq("get", "o@x/r", "3", "<query xmlns='jabber:iq:version'/>"), 301);
assert(c == d.NOT_MINE and #out == 0);
c, out, err = r:handle("<iq type='get' to='r.x'><query xmlns='jabber:iq:version'/></iq>", 301);
assert(c == d.DROPPED and #out == 0 and type(err) == "string");

-- A disown waits for the thing; tick after its deadline fails it.
c, out = r:handle(iq("set", "o@x/r", "4", "<disown xmlns='"..NS.."' jid='t@x'/>"), 302);
assert(c == d.OK and #out == 1 and out[1]:find("<disowned"), out[1]);
local deadline = assert(r:next_deadline());
assert(deadline > 302 and deadline <= 402, deadline);
c, out = r:tick(deadline);
assert(c == d.OK and #out == 1 and out[1]:find("not%-allowed"), out[1]);

-- presence: a bad JID is EINVAL with a message.
c, out = r:presence("t@x/r", false, 500);
assert(c == d.OK and #out == 0);
c, out, err = r:presence("not a jid", true, 500);
assert(c == d.EINVAL and #out == 0 and err, err);

-- forget_presence: OK, or EINVAL with a message for a bad JID.
c, err = r:forget_presence("t@x");
assert(c == d.OK and err == nil, err);
c, err = r:forget_presence("not a jid");
assert(c == d.EINVAL and err, err);

-- Misuse raises Lua errors.
assert(not pcall(r.handle, r, "<iq/>", -1));
assert(not pcall(r.handle, r));
assert(not pcall(r.presence, r, "a@b/c\0", true, 1));

-- close: explicit and repeated; methods then raise.
r:close();
r:close();
assert(tostring(r):find("closed"));
assert(not pcall(r.tick, r, 1));

do
	local scoped <close> = assert(d.open("r.y"));
	assert(scoped:tick(1) == d.OK);
end
local dropped = assert(d.open("r.z"));
dropped = nil; -- luacheck: ignore 311
collectgarbage();
collectgarbage();
print("binding.lua: all checks passed");
