"""dbus-fast 1.84 (Debian 12) writes string lengths in characters; storaged's writer
marshals with the length in bytes, as the D-Bus spec and newer dbus-fast do."""
import struct

from dbus_fast import Message, MessageType, Variant

from storaged.client.marshal_fix import _marshall, _pure_marshaller_class, has_length_bug

STRINGS = ["plain", "café", "\U0001F600 ok", "<!-- ü -->"]


def messages():
    for s in STRINGS:
        yield Message(destination="org.storaged.Storaged1", path="/org/storaged/Storaged1/Manager",
                      interface="org.storaged.Storaged1.Manager", member="LookupPool",
                      signature="sa{sv}", body=[s, {"k": Variant("s", s)}], serial=7)
        yield Message(message_type=MessageType.ERROR, error_name="org.storaged.Storaged1.Error.NotFound",
                      reply_serial=3, destination=":1.5", signature="s", body=[f"no pool named {s!r}"],
                      serial=8)


def test_fixed_marshaller_writes_byte_lengths():
    fixed = _pure_marshaller_class()
    for msg in messages():
        data = _marshall(fixed, msg, False)
        (body_len,) = struct.unpack_from("<I", data, 4)
        body = data[len(data) - body_len:]
        (first,) = struct.unpack_from("<I", body, 0)
        assert first == len(msg.body[0].encode()), msg.body[0]
        if not has_length_bug():  # the installed dbus-fast is right: the same bytes
            assert data == msg._marshall(False)
