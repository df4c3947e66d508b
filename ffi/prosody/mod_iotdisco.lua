-- mod_iotdisco: an XEP-0347 (IoT Discovery) Thing Registry inside Prosody.
--
-- A component module: load it with `Component "discovery.example.org" "iotdisco"`.
-- It opens one iotdisco registry (libiotdisco_ffi, through the Lua C module
-- iotdisco.so built from iotdisco_lua.c) with the component's host as the
-- registry's JID, and then:
--   * passes every IQ addressed to the host (or to any JID at it) to the
--     engine, with the `from` Prosody stamped, and sends every stanza the
--     engine emits (the reply, notifications to things, late disown replies);
--     an IQ the engine does not serve (NOT_MINE) is left to Prosody, which
--     answers get/set with service-unavailable and drops results and errors;
--   * feeds things' presence (full JIDs going available/unavailable) to the
--     engine, and handles subscriptions the way things expect of a registry:
--     `subscribe` gets `subscribed` plus a `subscribe` of our own,
--     `unsubscribe` gets `unsubscribed` plus `unsubscribe`; the module never
--     sends unsolicited presence and never answers probes;
--   * drives the engine's time-outs (disowns, forgotten notifications) from a
--     Prosody timer;
--   * closes the registry (flushing a durable one) on unload and shutdown.
-- Options (all optional; see README.md): iotdisco_lib_path, iotdisco_db_path,
-- iotdisco_in_memory, iotdisco_options, iotdisco_tick_interval.

local st = require "util.stanza";
local xml_parse = require "util.xml".parse;
local jid_split = require "util.jid".split;
local jid_bare = require "util.jid".bare;
local time = require "util.time";

local host = module.host;

-- The clock handed to the engine: monotonic milliseconds (only differences
-- matter; nothing time-based is stored).
local clock = time.monotonic or time.now;
local function now_ms()
	return math.floor(clock() * 1000);
end

-- Load the C module: from an explicit path, or through package.cpath.
local lib_path = module:get_option_string("iotdisco_lib_path");
local iotdisco;
if lib_path then
	local open, err = package.loadlib(lib_path, "luaopen_iotdisco");
	if not open then
		error("iotdisco: cannot load "..lib_path..": "..tostring(err));
	end
	iotdisco = open();
else
	local ok, lib = pcall(require, "iotdisco");
	if not ok then
		error("iotdisco: cannot load the C module 'iotdisco' (set iotdisco_lib_path): "..tostring(lib));
	end
	iotdisco = lib;
end

-- The options string of iotdisco_open: given as a string, or as a table
-- { key = value } (lists become comma-separated, booleans true/false).
local function options_string(opts)
	if opts == nil or type(opts) == "string" then
		return opts;
	end
	if type(opts) ~= "table" then
		error("iotdisco: iotdisco_options must be a string or a table");
	end
	local keys = {};
	for k in pairs(opts) do
		table.insert(keys, tostring(k));
	end
	table.sort(keys);
	local parts = {};
	for _, k in ipairs(keys) do
		local v = opts[k];
		if type(v) == "table" then
			local items = {};
			for _, item in ipairs(v) do table.insert(items, tostring(item)); end
			v = table.concat(items, ",");
		elseif math.type(v) == "float" and v == math.floor(v) then
			v = string.format("%d", v);
		else
			v = tostring(v);
		end
		if v:find(";", 1, true) then
			error("iotdisco: option '"..k.."' must not contain ';'");
		end
		table.insert(parts, k.."="..v);
	end
	return table.concat(parts, ";");
end

-- Where the registry lives: a sled directory (default: under Prosody's data
-- directory), or memory when iotdisco_in_memory = true.
local db_path;
if not module:get_option_boolean("iotdisco_in_memory", false) then
	db_path = module:get_option_path("iotdisco_db_path",
		"iotdisco/"..host:gsub("[^%w%.%-]", "_"), "data");
end
local options = options_string(module:get_option("iotdisco_options"));
local tick_interval = module:get_option_number("iotdisco_tick_interval", 1);

local registry, open_err, open_code = iotdisco.open(host, db_path, options);
if not registry then
	error(("iotdisco: cannot open the registry (%s, code %s): %s"):format(
		db_path or "in memory", tostring(open_code), tostring(open_err)));
end
module:log("info", "Thing Registry %s open (%s), libiotdisco %s",
	host, db_path or "in memory", iotdisco.version());

-- Sends what one engine call emitted, in order.
local function send_all(stanzas)
	for _, text in ipairs(stanzas) do
		local stanza, err = xml_parse(text);
		if stanza then
			module:send(stanza);
		else
			module:log("error", "Engine emitted an unparsable stanza (%s): %s", err, text);
		end
	end
end

-- Logs a failed engine call; true when the call succeeded. After a caught
-- panic the registry is poisoned (every call fails): close it and open it
-- again from its database, which stays consistent.
local function check(what, code, err)
	if code ~= iotdisco.EINVAL and code ~= iotdisco.ESTORAGE and code ~= iotdisco.EPANIC then
		return true;
	end
	module:log("error", "iotdisco %s failed (code %d): %s", what, code, tostring(err));
	if code == iotdisco.EPANIC and registry then
		registry:close();
		registry, open_err, open_code = iotdisco.open(host, db_path, options);
		if registry then
			module:log("warn", "Thing Registry %s reopened after an internal error", host);
		else
			module:log("error", "Thing Registry %s cannot be reopened (code %s): %s; "..
				"it is out of service until the module is reloaded",
				host, tostring(open_code), tostring(open_err));
		end
	end
	return false;
end

-- Any IQ to the host or to a JID at it.
local function on_iq(event)
	if not registry then return nil; end
	local stanza = event.stanza;
	local code, out, err = registry:handle(tostring(stanza), now_ms());
	module:log("debug", "iq %s %s from %s: code %d, %d stanza(s) to send",
		stanza.attr.type, stanza.tags[1] and stanza.tags[1].name or "-",
		tostring(stanza.attr.from), code, #out);
	send_all(out);
	if code == iotdisco.NOT_MINE then
		-- Not a discovery or disco IQ, nor an answer to a notification: let
		-- other modules and Prosody's defaults (service-unavailable for
		-- get/set, silence for result/error) deal with it.
		return nil;
	elseif code == iotdisco.DROPPED then
		-- No reply can be addressed (no id, bad from): nothing to send.
		module:log("debug", "Dropped an unanswerable IQ: %s", tostring(err));
		return true;
	end
	if not check("handle", code, err) then
		local t = stanza.attr.type;
		if #out == 0 and (t == "get" or t == "set") then
			event.origin.send(st.error_reply(stanza, "wait", "internal-server-error"));
		end
	end
	return true;
end

-- Presence to the host or to a JID at it.
local function on_presence(event)
	local stanza = event.stanza;
	local from, t = stanza.attr.from, stanza.attr.type;
	if not from or not registry then return true; end
	local _, _, resource = jid_split(from);
	if t == nil or t == "unavailable" then
		if resource then
			module:log("debug", "presence: %s %s", from, t or "available");
			local code, out, err = registry:presence(from, t == nil, now_ms());
			send_all(out);
			check("presence", code, err);
		end
		-- A bare-JID unavailable is Prosody acknowledging an unsubscription,
		-- not the thing going offline: ignored.
	elseif t == "subscribe" or t == "unsubscribe" then
		local us, them = stanza.attr.to or host, jid_bare(from);
		local answer = t == "subscribe" and "subscribed" or "unsubscribed";
		module:log("debug", "%s from %s: answering %s and %s", t, them, answer, t);
		module:send(st.presence({ from = us, to = them, type = answer }));
		module:send(st.presence({ from = us, to = them, type = t }));
		if t == "unsubscribe" then
			-- No unavailable will come once it is unsubscribed: what we know
			-- of its resources goes stale, so forget it (unknown, not offline).
			local code, err = registry:forget_presence(them);
			check("forget_presence", code, err);
		end
	end
	-- probe, subscribed, unsubscribed, error: nothing to do. Never answer a
	-- probe with available presence (things do not expect the registry's).
	return true;
end

for _, kind in ipairs({ "host", "bare", "full" }) do
	module:hook("iq/"..kind, on_iq, 10);
	module:hook("presence/"..kind, on_presence, 10);
end

-- Time-outs: fail disowns nobody answered, forget stale notifications. The
-- timer runs every iotdisco_tick_interval seconds, sooner when the engine's
-- next deadline is closer; the tick itself only runs when a deadline passed.
local timer = module:add_timer(tick_interval, function()
	if not registry then return; end
	local now = now_ms();
	local deadline = registry:next_deadline();
	if deadline and deadline <= now then
		local code, out, err = registry:tick(now);
		send_all(out);
		check("tick", code, err);
		deadline = registry:next_deadline();
	end
	if deadline then
		return math.max(0.01, math.min(tick_interval, (deadline - now) / 1000));
	end
	return tick_interval;
end);

local function close()
	if timer then
		timer:stop();
		timer = nil;
	end
	if registry then
		registry:close();
		registry = nil;
		module:log("info", "Thing Registry %s closed", host);
	end
end

function module.unload()
	close();
end

module:hook_global("server-stopped", close);
