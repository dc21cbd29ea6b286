"""The product catalog: products with their variants, imported from shop exports."""
