"""The vertical connection: a city exchange and the provincial platform, as two exchanges
speaking one signed protocol (纵向贯通省、市)."""
