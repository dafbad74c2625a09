"""Credit double publicity (信用"双公示"): administrative permits and penalties submitted
by the departments and districts, published within 7 working days, searchable in public
form, and the red and black lists derived from them (:mod:`exchange.credit.rules`)."""
