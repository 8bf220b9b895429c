"""Service booking with partner providers (加盟企业), the 81890 way: a catalogue of services,
slots from providers' working plans, bookings that never overbook, dispatch to providers by
SMS with accept/decline, reminders, and follow-up ratings that make each provider's score."""
